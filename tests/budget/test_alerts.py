"""Threshold emails of spend budgets: one per budget, period and threshold, through real SMTP."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import event, update

from modelux_server.budget.alerts import RECHECK, SpendAlerts, SpendObserved, on_spend, threshold_micros
from modelux_server.budget.periods import Period
from modelux_server.kit.clock import FrozenClock
from modelux_server.models import Budget
from modelux_server.services import Services
from tests.budget.support import period_of
from tests.conftest import Org
from tests.notifications.conftest import Smtp, body, outbox, worker

URL = "/manage/v1/budgets"
DOLLAR = 1_000_000


async def _budget(client: httpx.AsyncClient, org: Org, **fields: Any) -> dict[str, Any]:
    body = {"name": "prod", "scope": "organization", "amount_usd": 10, "period": "monthly", **fields}
    r = await client.post(URL, json=body, headers=org.headers)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def _seen(
    org: Org, budget: dict[str, Any], period: Period, spent: int, cap: int = 10 * DOLLAR
) -> SpendObserved:
    return SpendObserved(
        budget_id=budget["id"], org_id=org.id, period=period, spent_micros=spent, cap_micros=cap
    )


async def _thresholds_sent(rt: Services, org: Org) -> list[str]:
    """The outbox's budget emails, by dedupe key, oldest first."""
    return [row.dedupe_key for row in await outbox(rt, org.id) if row.kind == "budget_alert"]


def test_a_threshold_is_reached_at_ceil_of_its_share_of_the_cap() -> None:
    assert threshold_micros(10 * DOLLAR, 80) == 8 * DOLLAR
    assert threshold_micros(3, 50) == 2  # 1.5 micro-dollars: the 2nd
    assert threshold_micros(1, 1) == 1


async def test_each_threshold_emails_once_per_period_and_rearms_in_the_next(
    client: httpx.AsyncClient, org: Org, rt: Services, clock: FrozenClock, smtp: Any
) -> None:
    server: Smtp = smtp()
    budget = await _budget(client, org)
    november = await period_of(rt, org.id, "monthly")

    await on_spend(rt, _seen(org, budget, november, 4_999_999))  # under 50%
    assert await _thresholds_sent(rt, org) == []
    await on_spend(rt, _seen(org, budget, november, 5 * DOLLAR))
    await on_spend(rt, _seen(org, budget, november, 6 * DOLLAR))
    # one expensive request jumps past 80% and the cap: both, lowest first
    await on_spend(rt, _seen(org, budget, november, 12 * DOLLAR))
    await on_spend(rt, _seen(org, budget, november, 13 * DOLLAR))
    key = f"budget:{budget['id']}:{november.key}:{10 * DOLLAR}"
    assert await _thresholds_sent(rt, org) == [f"{key}:50", f"{key}:80", f"{key}:100"]
    # a process that has seen nothing yet (a restart, another process) sends nothing twice
    await SpendAlerts().observe(rt, _seen(org, budget, november, 13 * DOLLAR))
    assert len(await _thresholds_sent(rt, org)) == 3

    clock.advance(timedelta(days=4))  # December: a new period, every threshold re-arms
    december = await period_of(rt, org.id, "monthly")
    assert december.key != november.key
    await on_spend(rt, _seen(org, budget, december, 5 * DOLLAR))
    assert (await _thresholds_sent(rt, org))[3:] == [f"budget:{budget['id']}:{december.key}:{10 * DOLLAR}:50"]

    assert await worker(rt, server.url).run_once() == 4
    mails = server.sink.accepted
    assert {str(m["X-Modelux-Notification"]) for m in mails} == {"budget_alert"}
    assert {str(m["To"]) for m in mails} == {org.owner_email}  # no billing email set: the owners
    subjects = [str(m["Subject"]) for m in mails]
    assert subjects.count("[modelux] Budget prod reached 50% of $10.00") == 2
    assert "[modelux] Budget prod reached 80% of $10.00" in subjects
    cap = next(m for m in mails if str(m["Subject"]) == "[modelux] Budget prod reached its $10.00 cap")
    text = body(cap)
    assert (
        "refused with HTTP 402 (code\nbudget_exceeded) until it resets on December 1, 2026 00:00 UTC" in text
    )
    assert "Spent:   $12.00 of $10.00 (120%)" in text and "the organization" in text
    assert "https://modelux.test/budgets" in text
    assert "refused with HTTP 402 (code budget_exceeded)" in body(cap, "html")


async def test_the_cap_email_of_an_alert_budget_says_requests_continue(
    client: httpx.AsyncClient, org: Org, rt: Services, smtp: Any
) -> None:
    server: Smtp = smtp()
    project = (await client.post("/manage/v1/projects", json={"name": "web"}, headers=org.headers)).json()[
        "data"
    ]
    budget = await _budget(
        client,
        org,
        name="web spend",
        scope="project",
        scope_id=project["id"],
        action="alert",
        thresholds=[100],
    )
    period = await period_of(rt, org.id, "monthly")
    await on_spend(rt, _seen(org, budget, period, 10 * DOLLAR - 1))
    assert await _thresholds_sent(rt, org) == []
    await on_spend(rt, _seen(org, budget, period, 10 * DOLLAR))
    assert await worker(rt, server.url).run_once() == 1
    (mail,) = server.sink.accepted
    assert str(mail["Subject"]) == "[modelux] Budget web spend reached its $10.00 cap"
    text = body(mail)
    assert "only alerts: requests under it continue" in text and "402" not in text
    assert "project web" in text


async def test_the_threshold_listener_stays_off_the_database_until_a_percent_is_new(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    budget = await _budget(client, org, thresholds=[80])
    period = await period_of(rt, org.id, "monthly")
    statements: list[str] = []
    event.listen(rt.db.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))

    # below 1% of the cap nothing is even looked up
    await asyncio.gather(*(on_spend(rt, _seen(org, budget, period, n)) for n in range(0, 100_000, 1_000)))
    assert statements == []
    await on_spend(rt, _seen(org, budget, period, 8 * DOLLAR))
    assert statements and len(await _thresholds_sent(rt, org)) == 1
    statements.clear()
    # the same percent again, from many settlements at once: no query at all
    await asyncio.gather(*(on_spend(rt, _seen(org, budget, period, 8 * DOLLAR + n)) for n in range(500)))
    assert statements == []


async def test_a_budget_change_rearms_new_thresholds_and_a_new_cap(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    budget = await _budget(client, org, thresholds=[80, 100])
    period = await period_of(rt, org.id, "monthly")
    await on_spend(rt, _seen(org, budget, period, 6 * DOLLAR))
    assert await _thresholds_sent(rt, org) == []
    r = await client.patch(f"{URL}/{budget['id']}", json={"thresholds": [50, 80, 100]}, headers=org.headers)
    assert r.status_code == 200
    await on_spend(rt, _seen(org, budget, period, 6 * DOLLAR))
    assert [k.rsplit(":", 1)[1] for k in await _thresholds_sent(rt, org)] == ["50"]

    await on_spend(rt, _seen(org, budget, period, 10 * DOLLAR))
    assert len(await _thresholds_sent(rt, org)) == 3
    # a raised cap is a new cap: reaching it is news again, the old ones are not resent
    await client.patch(f"{URL}/{budget['id']}", json={"amount_usd": 20}, headers=org.headers)
    await on_spend(rt, _seen(org, budget, period, 10 * DOLLAR, cap=20 * DOLLAR))
    await on_spend(rt, _seen(org, budget, period, 20 * DOLLAR, cap=20 * DOLLAR))
    sent = await _thresholds_sent(rt, org)
    assert [k.split(":", 3)[3] for k in sent[3:]] == [
        f"{20 * DOLLAR}:50",
        f"{20 * DOLLAR}:80",
        f"{20 * DOLLAR}:100",
    ]


async def test_a_deleted_budget_or_another_organizations_id_sends_nothing(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    budget = await _budget(client, org)
    period = await period_of(rt, org.id, "monthly")
    # an id the request did not spend under: another organization's view of it
    await on_spend(rt, SpendObserved(budget["id"], "org_someone_else", period, 5 * DOLLAR, 10 * DOLLAR))
    assert (await client.delete(f"{URL}/{budget['id']}", headers=org.headers)).status_code == 200
    await on_spend(rt, _seen(org, budget, period, 10 * DOLLAR))
    assert await _thresholds_sent(rt, org) == []


async def test_a_threshold_added_by_another_process_is_sent_within_a_minute(
    client: httpx.AsyncClient, org: Org, rt: Services, clock: FrozenClock
) -> None:
    budget = await _budget(client, org, thresholds=[80])
    period = await period_of(rt, org.id, "monthly")
    await on_spend(rt, _seen(org, budget, period, 6 * DOLLAR))
    # another process adds 50%: this one's memory was not told
    async with rt.db.session() as session:
        await session.execute(update(Budget).where(Budget.id == budget["id"]).values(thresholds=[50, 80]))
    await on_spend(rt, _seen(org, budget, period, 6 * DOLLAR))
    assert await _thresholds_sent(rt, org) == []
    clock.advance(RECHECK)
    await on_spend(rt, _seen(org, budget, period, 6 * DOLLAR))
    assert [k.rsplit(":", 1)[1] for k in await _thresholds_sent(rt, org)] == ["50"]
