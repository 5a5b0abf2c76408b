"""Build the counter the settings ask for and run it for the app's lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text

from modelux_server.services import Probe, Services
from modelux_server.usage.backends.local import LocalCounter
from modelux_server.usage.backends.redis import RedisCounter
from modelux_server.usage.counter import RequestCounter
from modelux_server.usage.ledger import Ledger, LedgerReader


def build_counter(rt: Services) -> RequestCounter:
    ledger = Ledger(rt.db, rt.clock)
    settings = rt.settings
    if settings.redis_url:
        import redis.asyncio as aioredis

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


# pg_try_advisory_lock key of the one serving process of a PostgreSQL database without Redis
_SOLE_COUNTER_LOCK = 0x6D6C78636E74  # "mlxcnt"


class SecondCountingProcess(RuntimeError):
    """Another process already counts this database's requests in its own memory."""


@asynccontextmanager
async def _sole_local_counter(rt: Services) -> AsyncIterator[None]:
    """On PostgreSQL without Redis, only one process may count (in its own memory).

    A second one would admit against counts of its own: each of N processes
    could let the monthly cap through again. A session advisory lock, held on
    a connection of its own for the process's life, refuses it at start-up.
    (SQLite has the same guard as a file lock, taken by `modelux serve`.)
    """
    if rt.settings.redis_url or rt.db.is_sqlite:
        yield
        return
    async with rt.db.engine.connect() as conn:
        held = await conn.execution_options(isolation_level="AUTOCOMMIT")
        got = (
            await held.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": _SOLE_COUNTER_LOCK})
        ).scalar()
        if not got:
            raise SecondCountingProcess(
                "another modelux process counts requests on this PostgreSQL database without Redis; "
                "set MODELUX_REDIS_URL on every process to run more than one"
            )
        try:
            yield
        finally:
            await held.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _SOLE_COUNTER_LOCK})


@asynccontextmanager
async def counter_lifetime(rt: Services, *, sole: bool = True) -> AsyncIterator[RequestCounter]:
    """The request counter; `sole=False` skips the one-process guard (tests that share one
    in-process counter between two app instances, as Redis would be shared)."""
    if not sole:
        async with _counter(rt) as counter:
            yield counter
        return
    async with _sole_local_counter(rt), _counter(rt) as counter:
        yield counter


@asynccontextmanager
async def _counter(rt: Services) -> AsyncIterator[RequestCounter]:
    counter = build_counter(rt)
    rt.counter = counter
    await counter.start()
    if isinstance(counter, RedisCounter):
        rt.readiness["redis"] = _redis_probe(counter)
    try:
        yield counter
    finally:
        await counter.close()
        rt.counter = None
        rt.readiness.pop("redis", None)


@asynccontextmanager
async def ledger_reader(rt: Services) -> AsyncIterator[RequestCounter]:
    """The counter of an operator command: it admits nothing and reads the ledger.

    Exact as of the serving processes' last flush (seconds behind at most); an
    operator command has no live in-process count of its own to read.
    """
    counter = LedgerReader(Ledger(rt.db, rt.clock))
    rt.counter = counter
    try:
        yield counter
    finally:
        rt.counter = None


def _redis_probe(counter: RedisCounter) -> Probe:
    async def probe() -> str:
        await counter.redis.ping()
        return "ok"

    return probe
