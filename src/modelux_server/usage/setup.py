"""Build the counter the settings ask for and run it for the app's lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from modelux_server.runtime import Runtime
from modelux_server.usage.backends.local import LocalCounter
from modelux_server.usage.counter import RequestCounter
from modelux_server.usage.ledger import Ledger


def build_counter(rt: Runtime) -> RequestCounter:
    ledger = Ledger(rt.db, rt.clock)
    settings = rt.settings
    if settings.redis_url:
        import redis.asyncio as aioredis

        from modelux_server.usage.backends.redis import RedisCounter

        # a blocking pool waits for a free connection instead of failing (which
        # would look like Redis being down) when many admissions are in flight
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.redis_url, max_connections=256, timeout=5, socket_timeout=2, socket_connect_timeout=2
        )
        client = aioredis.Redis(connection_pool=pool)
        return RedisCounter(
            client,
            ledger,
            block=settings.counter_reserve_block,
            max_block=settings.counter_reserve_block_max,
            fail_open=settings.redis_unavailable == "fail_open",
        )
    return LocalCounter(
        ledger, block=settings.counter_reserve_block, max_block=settings.counter_reserve_block_max
    )


@asynccontextmanager
async def counter_lifetime(rt: Runtime) -> AsyncIterator[None]:
    counter = build_counter(rt)
    rt.extras["counter"] = counter
    await counter.start()
    if rt.settings.redis_url:
        rt.extras.setdefault("readiness", {})["redis"] = _redis_probe(counter)
    try:
        yield
    finally:
        await counter.close()


def _redis_probe(counter: RequestCounter):  # type: ignore[no-untyped-def]
    async def probe() -> str:
        await counter.redis.ping()  # type: ignore[attr-defined]
        return "ok"

    return probe
