"""Redis counter shared by many processes, with the ledger in PostgreSQL.

One Lua script per admission does the check and the increment atomically on
the Redis server, so N processes behave as one counter. The script also
refuses to count past the durable ceiling (`reserved`) kept in the ledger;
the caller extends the ceiling in the database first, then retries. That
keeps the invariant "ledger.reserved >= every admitted count", which is what
lets a Redis that lost its data (restart, failover) be rebuilt from the
ledger without ever letting the count go backwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from modelux_server.errors import ServiceUnavailable
from modelux_server.kit.windows import Window
from modelux_server.usage.counter import Admission, Admitted, Rejected
from modelux_server.usage.ledger import Ledger
from modelux_server.usage.reservation import BlockSizer

log = logging.getLogger("modelux.usage")

# KEYS[1] counter hash; ARGV[1] limit (-1 = unlimited)
# returns {1, used, reserved} admitted, {0, used} at the cap, {-1, used} ceiling
# reached, {-2, 0} key missing (rebuild from the ledger)
ADMIT = """
local h = redis.call('HMGET', KEYS[1], 'used', 'reserved')
if not h[1] then return {-2, 0} end
local used = tonumber(h[1])
local limit = tonumber(ARGV[1])
if limit >= 0 and used >= limit then return {0, used} end
if used >= tonumber(h[2]) then return {-1, used} end
return {1, redis.call('HINCRBY', KEYS[1], 'used', 1), tonumber(h[2])}
"""

# KEYS[1] counter hash; ARGV[1] used, ARGV[2] reserved, ARGV[3] ttl seconds
# creates the hash from the ledger only if no other process did first
SEED = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'used', ARGV[1], 'reserved', ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return 1
"""

# KEYS[1] counter hash; ARGV[1] new ceiling (only ever raised)
RAISE = """
local cur = redis.call('HGET', KEYS[1], 'reserved')
if cur and tonumber(cur) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'reserved', ARGV[1])
end
return 1
"""


class RedisCounter:
    def __init__(
        self,
        client: aioredis.Redis,
        ledger: Ledger,
        *,
        block: int = 64,
        max_block: int = 4096,
        fail_open: bool = False,
        flush_interval: float = 0.5,
        metrics: object | None = None,
    ) -> None:
        self.redis = client
        self.ledger = ledger
        self.block = max(1, block)
        self.max_block = max(self.block, max_block)
        self._sizers: dict[str, BlockSizer] = {}
        self.fail_open = fail_open
        self.flush_interval = flush_interval
        self.metrics = metrics
        self._admit = client.register_script(ADMIT)
        self._seed = client.register_script(SEED)
        self._raise = client.register_script(RAISE)
        self._touched: dict[tuple[str, str], Window] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._prefetching: set[str] = set()
        self._flusher: asyncio.Task[None] | None = None

    @staticmethod
    def key(org_id: str, window: Window) -> str:
        return f"mlx:reqs:{org_id}:{window.key}"

    async def admit(self, org_id: str, window: Window, limit: int | None) -> Admission:
        key = self.key(org_id, window)
        try:
            for _ in range(64):
                status, used, *rest = await self._admit(keys=[key], args=[-1 if limit is None else limit])
                if status == 1:
                    self._touched[(org_id, window.key)] = window
                    sizer = self._sizers.get(key)
                    ahead = sizer.size if sizer is not None else self.block
                    if rest and int(rest[0]) - int(used) <= ahead * 3 // 4:
                        # extend the ceiling before it is reached, so admissions rarely wait
                        self._prefetch(key, org_id, window, int(used))
                    return Admitted(used=int(used))
                if status == 0:
                    return Rejected(used=int(used), limit=int(limit or 0))
                # only one coroutine per key repairs (rebuild or extend); the
                # others wait for it and retry, instead of all hitting the database
                lock = self._locks.setdefault(key, asyncio.Lock())
                if lock.locked():
                    async with lock:
                        continue
                async with lock:
                    if status == -2:
                        await self._rebuild(key, org_id, window)
                    else:
                        await self._extend(key, org_id, window, int(used))
        except RedisError as exc:
            return self._unavailable(exc)
        raise ServiceUnavailable("The request counter is busy; try again.", code="counter_contended")

    async def _extend(self, key: str, org_id: str, window: Window, used: int) -> None:
        sizer = self._sizers.setdefault(key, BlockSizer(self.block, self.max_block))
        ceiling = await self.ledger.reserve(org_id, window, used + sizer.next())
        await self._raise(keys=[key], args=[ceiling])

    def _prefetch(self, key: str, org_id: str, window: Window, used: int) -> None:
        # marked synchronously: the task takes the lock only once it runs, and
        # every admission until then would otherwise start another extension
        if key in self._prefetching:
            return
        self._prefetching.add(key)
        lock = self._locks.setdefault(key, asyncio.Lock())

        async def run() -> None:
            try:
                async with lock:
                    await self._extend(key, org_id, window, used)
            except Exception:  # noqa: BLE001 - an admission that needs it will retry in line
                log.warning("ahead-of-need reservation failed", exc_info=True)
            finally:
                self._prefetching.discard(key)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _rebuild(self, key: str, org_id: str, window: Window) -> None:
        used, reserved = await self.ledger.load(org_id, window)
        start = max(used, reserved)
        ttl = int((window.end - window.start + timedelta(days=7)).total_seconds())
        await self._seed(keys=[key], args=[start, start, ttl])

    def _unavailable(self, exc: Exception) -> Admission:
        if self.fail_open:
            log.warning("redis unreachable, admitting without a counter: %s", type(exc).__name__)
            return Admitted(used=0, counted=False)
        log.error("redis unreachable, refusing proxy traffic (fail closed): %s", type(exc).__name__)
        raise ServiceUnavailable(
            "The request counter is unavailable; the request was not sent.", code="counter_unavailable"
        )

    async def used(self, org_id: str, window: Window) -> int:
        try:
            value = await self.redis.hget(self.key(org_id, window), "used")
        except RedisError:
            value = None
        if value is not None:
            return int(value)
        used, reserved = await self.ledger.load(org_id, window)
        return max(used, reserved)

    async def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - the next round retries
                log.exception("usage flush failed")

    async def flush(self) -> None:
        touched, self._touched = self._touched, {}
        counts = []
        for (org_id, _), window in touched.items():
            value = await self.redis.hget(self.key(org_id, window), "used")
            if value is not None:
                counts.append((org_id, window, int(value)))
        await self.ledger.record_used(counts)

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        try:
            await self.flush()
        except RedisError:
            log.warning("redis unreachable at shutdown; the ledger ceiling stands")
        await self.redis.aclose()
