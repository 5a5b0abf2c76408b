"""The end of an Enterprise contract: notices ahead of it, then renewal or the end plan.

A scheduled job (jobs/lifetime.py, leased so one process runs it) looks at every
organization whose current Enterprise plan version has a contract with an `end`:

* 30 and 7 days before the end, the owners and the operator (MODELUX_OPERATOR_EMAIL) are
  emailed through the outbox. The dedupe key names the organization, the end date, the
  mark and the reader, so each goes once even when the job repeats, and a plan edited
  in between (a new version with the same end) does not send it again. A mark missed
  while no worker ran goes out late, with the days actually left; only the nearest one.
* On the end date (UTC), an auto-renewing contract gets a new plan version whose start
  and end move forward by one term (by whole months when the term is whole months, so
  a year stays a year); one that does not renew moves the organization to its
  `end_plan`, which ends the Enterprise plan and its invoice subscription.

Each organization is handled in a transaction of its own, under its plan-state lock,
re-reading the plan there: a round that repeats after a crash finds the work done.
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.admin import actions, service
from modelux_server.admin.auth import Operator
from modelux_server.enterprise import plans
from modelux_server.enterprise.schemas import PlanInput
from modelux_server.enterprise.terms import Contract, Terms
from modelux_server.member.service import owner_emails
from modelux_server.models import CustomPlan, PlanState
from modelux_server.notifications import service as notifications
from modelux_server.notifications.contract_messages import ContractEndingNotice
from modelux_server.services import Services

log = logging.getLogger("modelux.enterprise")

KIND = "contract_ending"
MARKS = (7, 30)  # days before the end, nearest first
SYSTEM = Operator("system", "system")
RENEWAL_ACTOR = "system:renewal"
RUN_EVERY = timedelta(hours=1)


@dataclass
class Round:
    """What one run did, by organization id."""

    noticed: list[str] = field(default_factory=list)
    renewed: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class ContractRoundFailed(Exception):
    """Some organizations could not be handled; the job is retried (the others are done)."""


def operator_addresses(rt: Services) -> list[str]:
    """MODELUX_OPERATOR_EMAIL: one address or several, comma-separated."""
    return [a.strip() for a in (rt.settings.operator_email or "").split(",") if a.strip()]


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def next_term(contract: Contract) -> tuple[date, date]:
    """The term after `contract`'s: it starts at the end and lasts as long."""
    assert contract.end is not None
    start, end = contract.start, contract.end
    months = (end.year - start.year) * 12 + end.month - start.month
    if months > 0 and _add_months(start, months) == end:
        return end, _add_months(end, months)
    return end, end + (end - start)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


async def run(rt: Services) -> Round:
    """One pass over every Enterprise contract with an end (the scheduled job)."""
    today = rt.clock.now().date()
    async with rt.db.session() as session:
        rows = await session.execute(
            select(PlanState.org_id, CustomPlan.terms)
            .join(CustomPlan, CustomPlan.id == PlanState.custom_plan_id)
            .order_by(PlanState.org_id)
        )
        # the terms are JSON; read here rather than queried, the same on both databases
        org_ids = [org_id for org_id, terms in rows if (terms or {}).get("contract", {}).get("end")]
    done = Round()
    for org_id in org_ids:
        try:
            async with rt.db.session() as session:
                outcome = await handle(session, rt, org_id, today)
        except Exception:
            log.exception("contract end of %s failed; the next run tries again", org_id)
            done.failed.append(org_id)
            continue
        if outcome is not None:
            getattr(done, outcome).append(org_id)
    if done.failed:
        raise ContractRoundFailed(f"{len(done.failed)} contract(s) failed: {', '.join(done.failed[:20])}")
    return done


async def handle(
    session: AsyncSession, rt: Services, org_id: str, today: date
) -> Literal["noticed", "renewed", "ended"] | None:
    """Do what `today` asks of the organization's contract, under its lock."""
    state = await plans.locked_state(session, org_id)
    plan = await plans.current_plan(session, state)
    contract = Terms.load(plan.terms).contract if plan is not None else None
    if plan is None or contract is None or contract.end is None:
        return None
    if today >= contract.end:
        if contract.auto_renew:
            await renew(session, rt, org_id, contract, today)
            return "renewed"
        await service.move_plan(session, rt, SYSTEM, org_id, contract.end_plan, state.interval)
        return "ended"
    days_left = (contract.end - today).days
    mark = next((m for m in MARKS if days_left <= m), None)
    if mark is None:
        return None
    sent = await _notify(session, rt, plan, contract, mark, days_left)
    return "noticed" if sent else None


async def renew(session: AsyncSession, rt: Services, org_id: str, contract: Contract, today: date) -> None:
    """A new version for the next term (terms missed while nothing ran are skipped over)."""
    term = contract
    while term.end is not None and term.end <= today:
        start, end = next_term(term)
        term = term.model_copy(update={"start": start, "end": end})
    renewed = PlanInput.model_validate({"contract": term.model_dump(mode="json")})
    plan = await plans.edit_plan(session, rt, org_id, renewed, actor=RENEWAL_ACTOR)
    await actions.record(
        session,
        rt,
        SYSTEM,
        "enterprise_plan.renewed",
        org_id,
        version=plan.version,
        contract={"start": term.start.isoformat(), "end": term.end.isoformat() if term.end else None},
    )


async def _notify(
    session: AsyncSession, rt: Services, plan: CustomPlan, contract: Contract, mark: int, days_left: int
) -> bool:
    assert contract.end is not None
    end_plan = rt.catalog.get(contract.end_plan)
    org_id = plan.org_id
    notice_by = contract.end - timedelta(days=contract.notice_days) if contract.notice_days else None
    notice = ContractEndingNotice(
        audience="customer",
        org_name=await notifications.org_name(session, org_id),
        org_id=org_id,
        plan_name=plan.name,
        ends_at=_midnight(contract.end),
        days_left=days_left,
        auto_renew=contract.auto_renew,
        renews_until=_midnight(next_term(contract)[1]) if contract.auto_renew else None,
        notice_by=_midnight(notice_by) if notice_by and contract.auto_renew else None,
        end_plan_name=None if contract.auto_renew else (end_plan.name if end_plan else contract.end_plan),
        billing_url=notifications.billing_url(rt),
    )
    readers = [(notice, await owner_emails(session, org_id))]
    operators = operator_addresses(rt)
    if operators:
        readers.append((replace(notice, audience="operator"), operators))
    sent = False
    for reader, to in readers:
        sent |= await notifications.enqueue(
            session,
            rt,
            org_id=org_id,
            kind=KIND,
            dedupe_key=f"{KIND}:{org_id}:{contract.end.isoformat()}:{mark}:{reader.audience}",
            notice=reader,
            to=to,
        )
    return sent
