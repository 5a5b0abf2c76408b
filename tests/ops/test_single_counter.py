"""PostgreSQL without Redis counts in one process's memory, so a second counting process is refused."""

from __future__ import annotations

import pytest

from modelux_server.app import create_app
from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from modelux_server.usage.lifetime import SecondCountingProcess
from tests.support.redis import redis_url_or_skip


async def test_a_second_process_counting_on_postgresql_without_redis_is_refused(
    settings: Settings, clock: FrozenClock
) -> None:
    if settings.is_sqlite:
        pytest.skip("SQLite's guard is the file lock `modelux serve` takes (tests/ops/test_processes.py)")
    first = create_app(settings, clock=clock)
    async with first.router.lifespan_context(first):
        second = create_app(settings, clock=clock)
        with pytest.raises(SecondCountingProcess, match="set MODELUX_REDIS_URL"):
            async with second.router.lifespan_context(second):
                pass
        # with shared counters any number may run
        shared = settings.model_copy(update={"redis_url": redis_url_or_skip()})
        third = create_app(shared, clock=clock)
        async with third.router.lifespan_context(third):
            pass
    # the first one gone, its lock is free again
    again = create_app(settings, clock=clock)
    async with again.router.lifespan_context(again):
        pass
