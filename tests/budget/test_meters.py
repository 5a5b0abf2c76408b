"""The budget meters on their own: exact holds, leases shared through a real Redis, crashes.

The ledger here is a dictionary with the SQL ledger's rules (written only upwards):
the SQL itself runs in tests/proxy/test_budgets.py and tests/ops/test_budget_processes.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from modelux_server.budget.meter import Blocked, Hold, LocalBudgetMeter, Reserved
from modelux_server.budget.periods import Period, period_at
from modelux_server.budget.redis_meter import LEASE_REQUESTS, RedisBudgetMeter
from modelux_server.kit.ids import new_id
from tests.support.redis import redis_url_or_skip

PERIOD = period_at("monthly", datetime.now(UTC), 1)


class DictLedger:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], tuple[int, int]] = {}

    async def load(self, budget_id: str, period: Period) -> tuple[int, int]:
        return self.rows.get((budget_id, period.key), (0, 0))

    async def raise_ceiling(self, budget_id: str, period: Period, at_least: int) -> int:
        spent, ceiling = self.rows.get((budget_id, period.key), (0, 0))
        self.rows[(budget_id, period.key)] = (spent, max(ceiling, at_least))
        return max(ceiling, at_least)

    async def record(self, spends: list[tuple[str, Period, int]], *, settle: bool = False) -> None:
        for budget_id, period, spent in spends:
            old_spent, ceiling = self.rows.get((budget_id, period.key), (0, 0))
            new_spent = max(old_spent, spent)
            self.rows[(budget_id, period.key)] = (new_spent, new_spent if settle else max(ceiling, new_spent))


def hold(budget_id: str, cap: int, amount: int, blocking: bool = True) -> Hold:
    return Hold(budget_id, PERIOD, cap, amount, blocking)


async def test_the_local_meter_admits_exactly_what_fits_and_restarts_from_its_ceiling() -> None:
    ledger = DictLedger()
    meter = LocalBudgetMeter(ledger)  # type: ignore[arg-type]
    holds = (hold("bud_a", cap=1000, amount=100), hold("bud_b", cap=10**9, amount=100))
    results = await asyncio.gather(*(meter.reserve(holds, f"t{i}") for i in range(25)))
    admitted = [r for r in results if isinstance(r, Reserved)]
    assert len(admitted) == 10 and all(isinstance(r, Blocked) for r in results if r not in admitted)
    for reserved in admitted:
        meter.settle(reserved, 40)  # each answer cost less than its hold
    assert await meter.spent("bud_a", PERIOD) == 400
    # room came back: 600 left, 6 more holds of 100
    again = [await meter.reserve(holds, f"u{i}") for i in range(8)]
    assert sum(isinstance(r, Reserved) for r in again) == 6
    # a crash (no close): the next process starts from the ledger's ceiling, never lower
    spent, ceiling = ledger.rows[("bud_a", PERIOD.key)]
    assert ceiling >= 400 + 600  # the six live holds were covered before they were taken
    restarted = LocalBudgetMeter(ledger)  # type: ignore[arg-type]
    assert isinstance(await restarted.reserve(holds, "v"), Blocked)


@pytest.fixture
def redis_url() -> str:
    return redis_url_or_skip()


async def test_two_processes_sharing_redis_admit_exactly_what_fits(redis_url: str) -> None:
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
    meters = [RedisBudgetMeter(c, DictLedger()) for c in clients]  # type: ignore[arg-type]
    budget = new_id("bud")
    holds = (hold(budget, cap=5_000, amount=100),)
    try:
        results = await asyncio.gather(*(meters[i % 2].reserve(holds, f"t{i}") for i in range(120)))
        # near the cap every lease is exactly one request's need: 50 fit, across both
        assert sum(isinstance(r, Reserved) for r in results) == 50
    finally:
        for c in clients:
            await c.aclose()


async def test_a_lease_far_from_the_cap_serves_many_requests_without_redis(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    meter = RedisBudgetMeter(client, DictLedger())  # type: ignore[arg-type]
    budget = new_id("bud")
    holds = (hold(budget, cap=10**9, amount=100),)
    calls = 0
    real_run = meter._run

    async def counting(*args: object) -> object:
        nonlocal calls
        calls += 1
        return await real_run(*args)  # type: ignore[arg-type]

    meter._run = counting  # type: ignore[method-assign]
    try:
        for i in range(LEASE_REQUESTS * 3):
            reserved = await meter.reserve(holds, f"t{i}")
            assert isinstance(reserved, Reserved)
            meter.settle(reserved, 30)
        # a first load, then one lease per LEASE_REQUESTS requests (settled cost frees room too)
        assert calls <= 5
        await meter.flush()
        assert int(await client.hget(meter.keys(budget, PERIOD)[0], "spent") or 0) == 30 * LEASE_REQUESTS * 3
    finally:
        await client.aclose()


async def test_the_lease_of_a_dead_process_is_counted_as_spent_when_it_expires(redis_url: str) -> None:
    budget = new_id("bud")
    cap = 1_000_000
    holds = (hold(budget, cap=cap, amount=100),)
    dead_client, live_client = aioredis.Redis.from_url(redis_url), aioredis.Redis.from_url(redis_url)
    dead = RedisBudgetMeter(dead_client, DictLedger(), lease_seconds=1)  # type: ignore[arg-type]
    live = RedisBudgetMeter(live_client, DictLedger(), lease_seconds=1)  # type: ignore[arg-type]
    try:
        reserved = await dead.reserve(holds, "t")
        assert isinstance(reserved, Reserved)
        leased = int(await live_client.hget(live.keys(budget, PERIOD)[0], "held") or 0)
        assert leased == 100 * LEASE_REQUESTS  # the whole lease is out, not just one hold
        # the process dies: no settlement, no report, no close
        await asyncio.sleep(1.2)
        assert isinstance(await live.reserve(holds, "u"), Reserved)
        key = live.keys(budget, PERIOD)[0]
        # the dead lease may have been spent: it is counted, never handed out again
        assert int(await live_client.hget(key, "spent") or 0) == leased
        assert int(await live_client.hget(key, "held") or 0) == 100 * LEASE_REQUESTS  # the live one's
    finally:
        for c in (dead_client, live_client):
            with contextlib.suppress(Exception):
                await c.aclose()


async def test_an_idle_lease_is_given_back_so_another_process_can_use_the_room(redis_url: str) -> None:
    budget = new_id("bud")
    cap = 100 * LEASE_REQUESTS * 9  # just far enough for a full lease
    holds = (hold(budget, cap=cap, amount=100),)
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
    first, second = (RedisBudgetMeter(c, DictLedger()) for c in clients)  # type: ignore[arg-type]
    try:
        reserved = await first.reserve(holds, "t")
        assert isinstance(reserved, Reserved)
        first.settle(reserved, 100)
        await first.flush()  # the answer is reported; the lease, used since, keeps its room
        await first.flush()  # idle for a round: its room goes back
        held = int(await clients[0].hget(first.keys(budget, PERIOD)[0], "held") or 0)
        assert held == 0
        taken = [await second.reserve(holds, f"u{i}") for i in range(cap // 100)]
        assert sum(isinstance(r, Reserved) for r in taken) == cap // 100 - 1  # all but the spent one
    finally:
        for c in clients:
            await c.aclose()


async def test_alert_only_budgets_hold_no_room_and_never_refuse_on_redis(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    meter = RedisBudgetMeter(client, DictLedger())  # type: ignore[arg-type]
    budget = new_id("bud")
    alert = (hold(budget, cap=1_000, amount=0, blocking=False),)
    try:
        for i in range(10):  # past its cap after the fourth: still admitted
            reserved = await meter.reserve(alert, f"t{i}")
            assert isinstance(reserved, Reserved)
            meter.settle(reserved, 300)
        await meter.flush()
        assert int(await client.hget(meter.keys(budget, PERIOD)[0], "spent") or 0) == 3_000
        assert int(await client.hget(meter.keys(budget, PERIOD)[0], "held") or 0) == 0
    finally:
        await client.aclose()


async def test_a_lease_under_a_long_request_is_renewed_not_counted_as_spent(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    meter = RedisBudgetMeter(client, DictLedger(), lease_seconds=1)  # type: ignore[arg-type]
    budget = new_id("bud")
    holds = (hold(budget, cap=10**9, amount=1_000),)
    try:
        reserved = await meter.reserve(holds, "long")
        assert isinstance(reserved, Reserved)
        for _ in range(4):  # the request runs for 2 s, twice the lease's lifetime
            await asyncio.sleep(0.5)
            await meter.flush()
        meter.settle(reserved, 10)
        await meter.flush()
        assert int(await client.hget(meter.keys(budget, PERIOD)[0], "spent") or 0) == 10
    finally:
        await client.aclose()


async def test_a_lowered_cap_is_enforced_on_room_already_leased(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    meter = RedisBudgetMeter(client, DictLedger())  # type: ignore[arg-type]
    budget = new_id("bud")
    try:
        first = await meter.reserve((hold(budget, cap=10**9, amount=100),), "a")
        assert isinstance(first, Reserved)
        meter.settle(first, 100)
        lowered = (hold(budget, cap=450, amount=100),)
        results = [await meter.reserve(lowered, f"b{i}") for i in range(8)]
        # 100 spent: three more holds of 100 fit under 450, the rest are refused
        assert sum(isinstance(r, Reserved) for r in results) == 3
    finally:
        await client.aclose()


async def test_a_report_whose_answer_was_lost_is_applied_once(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    meter = RedisBudgetMeter(client, DictLedger())  # type: ignore[arg-type]
    budget = new_id("bud")
    holds = (hold(budget, cap=10**9, amount=100),)
    real_run = meter._run
    lose_next = True

    async def flaky(*args: object) -> object:
        nonlocal lose_next
        answer = await real_run(*args)  # type: ignore[arg-type]
        if lose_next and args[1]:  # a batch with reports: it ran, but the answer is lost
            lose_next = False
            raise aioredis.ConnectionError("reply lost")
        return answer

    meter._run = flaky  # type: ignore[method-assign]
    try:
        reserved = await meter.reserve(holds, "t")
        assert isinstance(reserved, Reserved)
        meter.settle(reserved, 70)
        with contextlib.suppress(aioredis.ConnectionError):
            await meter.flush()
        await meter.flush()  # the same numbered report again
        await meter.flush()
        assert int(await client.hget(meter.keys(budget, PERIOD)[0], "spent") or 0) == 70
    finally:
        await client.aclose()
