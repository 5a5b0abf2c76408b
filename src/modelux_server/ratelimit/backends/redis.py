"""The Redis limiter: one Lua script per check, so many processes share one allowance exactly.

The script is `limiter.take` line for line (the same integer units), run
atomically on the Redis server: reading the bucket, refilling it, taking a
request and storing it back cannot interleave with another process's check.

Each bucket expires once it would be full again (plus a second), since a
missing bucket counts as full: idle keys cost Redis nothing.

Redis unreachable: each process falls back to an in-process allowance of
its own (the same limit, so N processes allow up to N times it) until Redis
answers again, whatever `MODELUX_REDIS_UNAVAILABLE` says. That setting
protects the monthly count, and the counter applies it to proxy traffic
anyway (503 `counter_unavailable`, or admitted uncounted); refusing here too
would add nothing to that, and would take the management API (which needs
no Redis otherwise) down with Redis for no gain, while letting everything
through unlimited would drop the protection exactly when a key runs away.
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from modelux_server.kit.clock import Clock
from modelux_server.ratelimit.backends.local import LocalRateLimiter
from modelux_server.ratelimit.limiter import PERIOD, Allowed, Refused, Verdict, micros

log = logging.getLogger("modelux.ratelimit")

# KEYS[1] the bucket (hash: level, last); ARGV[1] limit per minute, ARGV[2] now in µs,
# ARGV[3] the period in µs (limiter.PERIOD)
# returns {1, remaining, reset_us} allowed, {0, retry_us, reset_us} refused
TAKE = """
local period = tonumber(ARGV[3])
local limit = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local capacity = limit * period
local held = redis.call('HMGET', KEYS[1], 'level', 'last')
local level, last = tonumber(held[1]), tonumber(held[2])
if level == nil or last == nil then
  level, last = capacity, now
end
local elapsed = now - last
if elapsed > 0 then
  level = level + math.min(elapsed, period) * limit
  last = now
end
level = math.min(level, capacity)
local allowed = 0
if level >= period then
  level = level - period
  allowed = 1
end
local reset = math.ceil((capacity - level) / limit)
redis.call('HSET', KEYS[1], 'level', level, 'last', last)
redis.call('PEXPIRE', KEYS[1], math.ceil(reset / 1000) + 1000)
if allowed == 1 then
  return {1, math.floor(level / period), reset}
end
return {0, math.ceil((period - level) / limit), reset}
"""

# how often an outage is logged again while it lasts
_WARN_EVERY_S = 30.0


class RedisRateLimiter:
    def __init__(self, client: aioredis.Redis, clock: Clock) -> None:
        self.redis = client
        self.clock = clock
        self.fallback = LocalRateLimiter(clock)
        self._take = client.register_script(TAKE)
        self._warned_at = -_WARN_EVERY_S

    @staticmethod
    def key(key: str) -> str:
        return f"mlx:rl:{key}"

    async def check(self, key: str, per_minute: int) -> Verdict:
        if per_minute < 1:
            raise ValueError("a rate limit is at least 1 request per minute")
        now = micros(self.clock.now())
        try:
            allowed, first, reset = await self._take(keys=[self.key(key)], args=[per_minute, now, PERIOD])
        except RedisError as exc:
            self._warn(exc)
            return await self.fallback.check(key, per_minute)
        if allowed == 1:
            return Allowed(per_minute, int(first), int(reset))
        return Refused(per_minute, int(first), int(reset))

    def _warn(self, exc: Exception) -> None:
        # said once per _WARN_EVERY_S, not once per request of an outage
        if time.monotonic() - self._warned_at >= _WARN_EVERY_S:
            self._warned_at = time.monotonic()
            log.warning(
                "redis unreachable, rate limits counted per process until it is back: %s",
                type(exc).__name__,
            )

    async def close(self) -> None:
        await self.fallback.close()
        await self.redis.aclose()
