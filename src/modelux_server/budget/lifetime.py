"""Build the budget meter next to the request counter, and run it for the app's lifetime.

With Redis the meter shares the counter's client (and so its pool and its fate);
without, it counts in this process, which the request counter's one-process guard
already makes the only one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from modelux_server.budget.meter import BudgetMeter, LocalBudgetMeter, SpendLedger
from modelux_server.budget.redis_meter import RedisBudgetMeter
from modelux_server.services import Services
from modelux_server.usage.backends.redis import RedisCounter


def build_meter(rt: Services) -> BudgetMeter:
    ledger = SpendLedger(rt.db, rt.clock)
    counter = rt.counter
    if isinstance(counter, RedisCounter):
        return RedisBudgetMeter(counter.redis, ledger)
    return LocalBudgetMeter(ledger)


@asynccontextmanager
async def budget_meter_lifetime(rt: Services) -> AsyncIterator[BudgetMeter]:
    """Enter after the counter: the Redis meter's client closes with the counter."""
    meter = build_meter(rt)
    rt.budget_meter = meter
    await meter.start()
    try:
        yield meter
    finally:
        await meter.close()
        rt.budget_meter = None
