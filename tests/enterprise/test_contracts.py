"""The end of an Enterprise contract on SQLite and PostgreSQL, with a frozen clock and a real
SMTP server: notices 30 and 7 days ahead to the owners and the operator, each once; then
renewal (the term moves forward) or the plan the contract names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from modelux_server.admin.actions import for_org
from modelux_server.billing import repository
from modelux_server.config import Settings
from modelux_server.enterprise import contracts, plans
from modelux_server.enterprise.schemas import PlanInput
from modelux_server.enterprise.terms import Contract
from modelux_server.jobs.lifetime import scheduled_jobs
from modelux_server.jobs.schedule import Scheduler
from modelux_server.kit.clock import FrozenClock
from modelux_server.models import CustomPlan, PlanChange
from modelux_server.services import Services
from tests.conftest import make_org
from tests.notifications.conftest import Smtp, body, outbox, running, worker

OPERATOR = "ops@modelux.test"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"operator_email": OPERATOR})


@pytest.fixture
async def runtime(settings: Settings, clock: FrozenClock) -> AsyncIterator[Services]:
    async with running(settings, clock) as rt:
        yield rt


async def give_plan(rt: Services, org_id: str, contract: dict[str, Any]) -> CustomPlan:
    given = PlanInput.model_validate(
        {"name": "Acme Enterprise", "limits": {"monthly_requests": "unlimited"}, "contract": contract}
    )
    async with rt.db.session() as session:
        return await plans.create_plan(session, rt, org_id, given, actor="operator:alice")


async def current(rt: Services, org_id: str) -> tuple[str, CustomPlan | None]:
    async with rt.db.session() as session:
        state = await repository.get_plan_state(session, org_id)
        assert state is not None
        return state.plan_id, await repository.get_custom_plan(session, state.custom_plan_id)


async def contract_mail(rt: Services, server: Smtp) -> list[tuple[str, str, str]]:
    """Run the job twice and the outbox twice; what was delivered: (to, subject, text)."""
    for _ in range(2):
        await contracts.run(rt)
        await worker(rt, server.url).run_once()
    return [
        (str(m["To"]), str(m["Subject"]), body(m))
        for m in server.sink.accepted
        if m["X-Modelux-Notification"] == "contract_ending"
    ]


async def test_notices_30_and_7_days_ahead_go_once_each_then_the_end_plan(
    runtime: Services, clock: FrozenClock, smtp: Any
) -> None:
    server: Smtp = smtp()
    org = await make_org(runtime, name="Acme", email="owner@acme.test")
    await give_plan(runtime, org.id, {"start": "2026-01-01", "end": "2027-01-01", "end_plan": "pro"})

    assert await contract_mail(runtime, server) == []  # 34 days left: nothing yet

    clock.set(datetime(2026, 12, 2, 6, 0, tzinfo=UTC))  # 30 days left
    first = await contract_mail(runtime, server)
    assert sorted(to for to, _, _ in first) == [OPERATOR, "owner@acme.test"]
    mails = {to: (subject, text) for to, subject, text in first}
    subject, text = mails["owner@acme.test"]
    assert subject == "[modelux] Your Acme contract ends on January 1, 2027"
    assert "ends on January 1, 2027, in 30 days" in text and "moves to the Pro plan" in text
    assert "Nothing is deleted" in text and OPERATOR not in text
    subject, text = mails[OPERATOR]
    assert subject == f"[modelux] Acme ({org.id}): contract ends (to Pro) on January 1, 2027"
    assert "moves the organization to the Pro plan" in text and "operator of this modelux" in text

    clock.set(datetime(2026, 12, 20, 6, 0, tzinfo=UTC))  # 12 days: between the marks
    assert await contract_mail(runtime, server) == first

    clock.set(datetime(2026, 12, 25, 6, 0, tzinfo=UTC))  # 7 days left
    second = (await contract_mail(runtime, server))[2:]
    assert sorted(to for to, _, _ in second) == [OPERATOR, "owner@acme.test"]
    assert all("in 7 days" in text for _, _, text in second)
    rows = [n for n in await outbox(runtime, org.id) if n.kind == "contract_ending"]
    assert len(rows) == 4 and all(n.status == "sent" for n in rows)
    assert (await current(runtime, org.id))[0] == "enterprise"  # until the end date

    # the end date: the organization moves to the plan the contract names
    clock.set(datetime(2027, 1, 1, 0, 30, tzinfo=UTC))
    done = await contracts.run(runtime)
    assert done.ended == [org.id]
    plan_id, custom = await current(runtime, org.id)
    assert (plan_id, custom) == ("pro", None)
    assert (await contracts.run(runtime)).ended == []  # a repeated run finds nothing to do
    async with runtime.db.session() as session:
        change = (
            await session.scalars(
                select(PlanChange).where(PlanChange.org_id == org.id).order_by(PlanChange.created_at.desc())
            )
        ).first()
        done_by = await for_org(session, org.id)
    assert change is not None and (change.from_plan, change.to_plan) == ("enterprise", "pro")
    assert [(a.operator, a.via, a.action) for a in done_by] == [("system", "system", "plan.changed")]


async def test_an_auto_renewing_contract_moves_forward_one_term(
    runtime: Services, clock: FrozenClock, smtp: Any
) -> None:
    server: Smtp = smtp()
    org = await make_org(runtime, name="Acme", email="owner@acme.test")
    terms = {"start": "2027-01-01", "end": "2028-01-01", "auto_renew": True, "notice_days": 60}
    first = await give_plan(runtime, org.id, terms)

    clock.set(datetime(2027, 12, 2, 9, 0, tzinfo=UTC))
    mails = {to: (subject, text) for to, subject, text in await contract_mail(runtime, server)}
    subject, text = mails["owner@acme.test"]
    assert subject == "[modelux] Your Acme contract renews on January 1, 2028"
    assert "renews on January 1, 2028, in 30 days, for another term to January 1, 2029" in text
    # 60 days' notice were due by November 2: too late to end it now, and the mail says so
    assert "notice period to end it instead ended on November 2, 2027" in text
    assert "renews" in mails[OPERATOR][0]

    clock.set(datetime(2028, 1, 1, 0, 30, tzinfo=UTC))
    assert (await contracts.run(runtime)).renewed == [org.id]
    plan_id, renewed = await current(runtime, org.id)
    assert plan_id == "enterprise" and renewed is not None
    assert renewed.version == first.version + 1 and renewed.actor == "system:renewal"
    contract = Contract.model_validate((renewed.terms or {})["contract"])
    # a year stays a year across the leap day of 2028
    assert (contract.start, contract.end) == (date(2028, 1, 1), date(2029, 1, 1))
    assert contract.auto_renew and contract.notice_days == 60
    assert (await contracts.run(runtime)).renewed == []  # done once
    again = (await current(runtime, org.id))[1]
    assert again is not None and again.id == renewed.id


def test_the_next_term_is_as_long_as_the_last() -> None:
    def after(start: str, end: str) -> tuple[str, str]:
        term = Contract.model_validate({"start": start, "end": end})
        a, b = contracts.next_term(term)
        return a.isoformat(), b.isoformat()

    assert after("2026-01-01", "2027-01-01") == ("2027-01-01", "2028-01-01")
    assert after("2026-03-15", "2026-06-15") == ("2026-06-15", "2026-09-15")  # a quarter
    assert after("2026-01-01", "2026-01-31") == ("2026-01-31", "2026-03-02")  # 30 days


async def test_the_job_is_scheduled_and_one_process_runs_it(settings: Settings, clock: FrozenClock) -> None:
    async with running(settings, clock) as first, running(settings, clock) as second:
        org = await make_org(first, name="Acme", email="owner@acme.test")
        await give_plan(first, org.id, {"start": "2026-01-01", "end": "2026-12-20"})
        [job] = [j for j in scheduled_jobs(first) if j.name == "enterprise-contracts"]
        [other] = [j for j in scheduled_jobs(second) if j.name == "enterprise-contracts"]
        a, b = Scheduler(first.db, clock, [job]), Scheduler(second.db, clock, [other])
        assert await a.tick() == [] and await b.tick() == []  # its schedule starts now
        clock.advance(timedelta(hours=1))
        started = await a.tick() + await b.tick()
        await a.wait_idle()
        await b.wait_idle()
        assert started == ["enterprise-contracts"]
        notices = [n for n in await outbox(first, org.id) if n.kind == "contract_ending"]
        assert sorted(n.recipients[0] for n in notices) == [OPERATOR, "owner@acme.test"]
