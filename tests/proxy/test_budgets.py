"""Spend budgets on the proxy, through the official SDKs: holds, settlement, the 402.

Prices come from `MODELUX_MODEL_PRICES` here (1 USD per million input tokens, 2 per
million output tokens for the fake's model), so every figure below can be worked
out by hand: a request's worst case is its body's byte count in micro-dollars plus
2 micro-dollars per output token it may produce.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import httpx
import modelux
import openai
import pytest
from sqlalchemy import select

from modelux_server.budget.meter import LocalBudgetMeter
from modelux_server.budget.periods import period_at
from modelux_server.budget.redis_meter import RedisBudgetMeter
from modelux_server.config import Settings
from modelux_server.kit.ids import new_id
from modelux_server.models import Budget, BudgetSpend
from modelux_server.proxy.budgets import drain_alerts
from modelux_server.proxy.codec import dumps
from tests.proxy.conftest import Tenant
from tests.support.fake_upstream import FakeUpstream
from tests.support.live_server import LiveServer

MSG = [{"role": "user", "content": "hi"}]
PRICES = (
    '{"openai/gpt-fake": {"input_per_mtok": 1, "output_per_mtok": 2},'
    ' "openai/slow-3": {"input_per_mtok": 1, "output_per_mtok": 2},'
    ' "openai/slow-1.5": {"input_per_mtok": 1, "output_per_mtok": 2}}'
)


@pytest.fixture
def proxy_settings(proxy_settings: Settings) -> Settings:
    return proxy_settings.model_copy(update={"model_prices": PRICES})


def add_budget(live: LiveServer, t: Tenant, cap_micros: int, **fields: Any) -> str:
    budget_id = new_id("bud")

    async def create() -> None:
        rt = live.runtime
        async with rt.db.session() as session:
            now = rt.clock.now()
            session.add(
                Budget(
                    id=budget_id,
                    org_id=t.org_id,
                    name=fields.get("name", "team cap"),
                    scope=fields.get("scope", "organization"),
                    scope_id=fields.get("scope_id", t.org_id),
                    cap_micros=cap_micros,
                    period=fields.get("period", "monthly"),
                    action=fields.get("action", "block"),
                    thresholds=[50, 80, 100],
                    created_at=now,
                    updated_at=now,
                )
            )
        rt.invalidate_now(budgets=True)

    live.call(create())
    return budget_id


def settled(live: LiveServer, budget_id: str) -> int:
    """The settled spend the meter holds, once pending settlements have run."""

    async def read() -> int:
        await drain_alerts()
        rt = live.runtime
        assert rt.budget_meter is not None
        period = period_at("monthly", rt.clock.now(), 1)
        return await rt.budget_meter.spent(budget_id, period)

    return live.call(read())


def worst_case(body: dict[str, Any], max_tokens: int) -> int:
    return len(dumps(body)) + 2 * max_tokens


def test_the_modelux_sdk_raises_budget_exceeded_and_reads_the_headers(
    live: LiveServer, tenant: Tenant, clock: Any
) -> None:
    body = {"model": "gpt-fake", "messages": MSG, "max_tokens": 5}
    one = worst_case(body, 5)
    budget_id = add_budget(live, tenant, cap_micros=one * 2 - 1, name="tight")
    mx = modelux.Modelux(api_key=tenant.key, base_url=f"{tenant.base}/v1", max_retries=0)
    done = mx.chat.completions.create(model="gpt-fake", messages=MSG, max_tokens=5)
    meta = done.modelux
    assert meta.budget_name == "tight" and meta.budget_action == "block"
    assert meta.budget_reset is not None and datetime.fromisoformat(meta.budget_reset) > clock.now()
    # remaining after this request's hold: the cap less the worst case (the SDK's body
    # carries a few bytes more than ours, so at most that)
    assert meta.budget_remaining is not None and 0 < meta.budget_remaining <= (one - 1) / 1e6
    assert done.usage is not None
    cost = done.usage.prompt_tokens * 1 + done.usage.completion_tokens * 2
    assert settled(live, budget_id) == cost

    # the spend so far leaves less room than one worst case: the next one is refused
    with pytest.raises(modelux.BudgetExceededError) as raised:
        mx.chat.completions.create(model="gpt-fake", messages=MSG, max_tokens=5 + one)
    info = raised.value.budget
    assert info.name == "tight" and info.period == "monthly"
    assert info.spend_usd == pytest.approx(cost / 1e6) and info.cap_usd == pytest.approx((one * 2 - 1) / 1e6)
    assert datetime.fromisoformat(info.period_resets_at) > clock.now()
    assert raised.value.retry_after is not None and raised.value.retry_after > 0
    # refused before counting: only the first request counts
    assert tenant.billing()["meters"]["monthly_requests"]["used"] == 1


def test_the_402_body_has_the_contract_error_and_a_top_level_budget(live: LiveServer, tenant: Tenant) -> None:
    add_budget(live, tenant, cap_micros=1, name="nothing")
    r = httpx.post(
        f"{tenant.base}/v1/chat/completions",
        json={"model": "gpt-fake", "messages": MSG, "max_tokens": 3},
        headers={"Authorization": f"Bearer {tenant.key}"},
    )
    assert r.status_code == 402
    data = r.json()
    assert data["error"]["code"] == "budget_exceeded" and data["error"]["message"]
    assert set(data["budget"]) == {"name", "spend_usd", "cap_usd", "period", "period_resets_at"}
    assert data["budget"]["cap_usd"] == 0.000001
    assert int(r.headers["retry-after"]) > 0
    assert r.headers["x-modelux-budget-name"] == "nothing" and r.headers["x-modelux-budget-action"] == "block"


def test_a_model_without_a_price_is_refused_under_a_blocking_budget_only(
    live: LiveServer, tenant: Tenant
) -> None:
    add_budget(live, tenant, cap_micros=10**9, name="alerts", action="alert")
    c = openai.OpenAI(api_key=tenant.key, base_url=f"{tenant.base}/v1", max_retries=0)
    raw = c.chat.completions.with_raw_response.create(model="openai/echo", messages=MSG)
    assert raw.headers["x-modelux-budget-action"] == "warn_only"
    add_budget(live, tenant, cap_micros=10**9, name="hard")
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        c.chat.completions.create(model="openai/echo", messages=MSG)
    assert raised.value.code == "model_price_unknown"
    assert tenant.billing()["meters"]["monthly_requests"]["used"] == 1


def test_a_project_budget_does_not_touch_another_project(live: LiveServer, tenant: Tenant) -> None:
    add_budget(live, tenant, cap_micros=1, name="other project", scope="project", scope_id="proj_other")
    add_budget(live, tenant, cap_micros=1, name="other key", scope="api_key", scope_id="key_other")
    c = openai.OpenAI(api_key=tenant.key, base_url=f"{tenant.base}/v1", max_retries=0)
    raw = c.chat.completions.with_raw_response.create(model="gpt-fake", messages=MSG)
    assert "x-modelux-budget-name" not in raw.headers
    add_budget(
        live, tenant, cap_micros=10**9, name="this project", scope="project", scope_id=tenant.project_id
    )
    raw = c.chat.completions.with_raw_response.create(model="gpt-fake", messages=MSG)
    assert raw.headers["x-modelux-budget-name"] == "this project"


def test_200_concurrent_requests_never_spend_past_the_cap(
    live: LiveServer, tenant: Tenant, upstream: FakeUpstream
) -> None:
    body = {"model": "openai/slow-3", "messages": MSG, "max_tokens": 20}
    one = worst_case(body, 20)
    cap = 50 * one
    budget_id = add_budget(live, tenant, cap_micros=cap, name="burst")

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=tenant.base,
            headers={"Authorization": f"Bearer {tenant.key}"},
            timeout=60,
            limits=httpx.Limits(max_connections=200),
        ) as c:
            return list(
                await asyncio.gather(*(c.post("/v1/chat/completions", json=body) for _ in range(200)))
            )

    answers = asyncio.run(burst())
    codes = [a.status_code for a in answers]
    assert set(codes) <= {200, 402}, codes
    ok = [a for a in answers if a.status_code == 200]
    # the upstream takes three seconds, so the first fifty holds are all still held when
    # the last requests arrive: at least as many worst cases as fit are admitted, and
    # those whose holds did not fit are refused (more than fifty only when answers
    # ended, and freed their unused hold, while others were still arriving)
    assert len(ok) >= 50 and codes.count(402) > 0, codes.count(200)
    real = sum(a.json()["usage"]["prompt_tokens"] + 2 * a.json()["usage"]["completion_tokens"] for a in ok)
    spent = settled(live, budget_id)
    assert spent == real <= cap

    async def ledger() -> tuple[int, int]:
        await live.runtime.budget_meter.flush()  # type: ignore[union-attr]
        async with live.runtime.db.session() as session:
            row = (
                await session.execute(select(BudgetSpend).where(BudgetSpend.budget_id == budget_id))
            ).scalar_one()
            return row.spent_micros, row.ceiling_micros

    stored, ceiling = live.call(ledger())
    assert stored == spent and ceiling >= spent


def test_a_deleted_budget_does_not_stop_the_others_being_written(live: LiveServer, tenant: Tenant) -> None:
    gone = add_budget(live, tenant, cap_micros=10**9, name="to delete")
    kept = add_budget(live, tenant, cap_micros=10**9, name="kept")
    c = openai.OpenAI(api_key=tenant.key, base_url=f"{tenant.base}/v1", max_retries=0)
    # deleted between the answer and the next ledger write: that write has a row for it
    c.chat.completions.create(model="gpt-fake", messages=MSG, max_tokens=5)
    with tenant.manage() as m:
        assert m.delete(f"/budgets/{gone}").status_code == 200

    async def written() -> int:
        await drain_alerts()
        meter = live.runtime.budget_meter
        assert meter is not None
        await meter.flush()
        async with live.runtime.db.session() as session:
            return (
                await session.execute(select(BudgetSpend.spent_micros).where(BudgetSpend.budget_id == kept))
            ).scalar_one()

    assert live.call(written()) == settled(live, kept) > 0


def test_a_client_that_leaves_before_its_stream_starts_is_charged_its_hold_once(
    live: LiveServer, tenant: Tenant
) -> None:
    budget_id = add_budget(live, tenant, cap_micros=10**9, name="streams")
    body = {"model": "openai/slow-1.5", "messages": MSG, "max_tokens": 10, "stream": True}
    hold = worst_case(body, 10)
    with pytest.raises(httpx.ReadTimeout):
        # the upstream's first chunk comes after 1.5 s; the client gives up at 0.3 s
        httpx.post(
            f"{tenant.base}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {tenant.key}"},
            timeout=0.3,
        )
    deadline = time.monotonic() + 10
    while settled(live, budget_id) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    # settled once: at the real cost when the relay still ran to its end, at the whole
    # hold when the request ended before it (the upstream may bill what it generated)
    charged = settled(live, budget_id)
    assert 0 < charged <= hold
    assert holding(live, budget_id) == 0
    time.sleep(0.5)
    assert settled(live, budget_id) == charged


def holding(live: LiveServer, budget_id: str) -> int:
    """What the meter still holds for requests running on the budget."""
    meter = live.runtime.budget_meter
    period = period_at("monthly", live.runtime.clock.now(), 1)
    if isinstance(meter, LocalBudgetMeter):
        return meter._live[(budget_id, period.key)].held
    assert isinstance(meter, RedisBudgetMeter)
    return meter._leases[(budget_id, period.key)].running
