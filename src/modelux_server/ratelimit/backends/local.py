"""The in-process limiter: exact within one process, the embedded default.

`take` runs with no `await` around it, so within the event loop each check
is one atomic step, as the Lua script is on the Redis server.
"""

from __future__ import annotations

from modelux_server.kit.clock import Clock
from modelux_server.ratelimit.limiter import PERIOD, Bucket, Verdict, micros, take

# checks between two sweeps of the buckets that refilled completely
SWEEP_EVERY = 4096


class LocalRateLimiter:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._buckets: dict[str, tuple[Bucket, int]] = {}  # key -> (bucket, its limit)
        self._checks = 0

    async def check(self, key: str, per_minute: int) -> Verdict:
        now = micros(self.clock.now())
        held = self._buckets.get(key)
        bucket, verdict = take(held[0] if held is not None else None, per_minute, now)
        self._buckets[key] = (bucket, per_minute)
        self._checks += 1
        if self._checks % SWEEP_EVERY == 0:
            self._sweep(now)
        return verdict

    def _sweep(self, now: int) -> None:
        # a full bucket is what a missing one means: forgetting it changes nothing,
        # and keeps memory bounded by the keys active in the last minute
        full = [
            key
            for key, (bucket, limit) in self._buckets.items()
            if bucket.level + min(max(now - bucket.last_us, 0), PERIOD) * limit >= limit * PERIOD
        ]
        for key in full:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)

    async def close(self) -> None:
        self._buckets.clear()
