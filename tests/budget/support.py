"""Helpers shared by the budget tests: keys of a given role, and spend written to the ledger."""

from __future__ import annotations

from datetime import datetime

from modelux_server.budget import repository
from modelux_server.budget.periods import Period, period_at
from modelux_server.management_key.service import issue_management_key
from modelux_server.models import BudgetSpend
from modelux_server.services import Services


async def key_with_role(rt: Services, org_id: str, role: str) -> dict[str, str]:
    """Authorization headers for a new management key of `role` in the organization."""
    async with rt.db.session() as session:
        _, token = await issue_management_key(session, rt, org_id, name=role, role=role, created_by=None)
    return {"Authorization": f"Bearer {token}"}


async def period_of(rt: Services, org_id: str, kind: str, now: datetime | None = None) -> Period:
    """The period of `kind` containing `now` (the clock's now) for the organization."""
    async with rt.db.session() as session:
        day = await repository.anchor_day(session, org_id)
    return period_at(kind, now or rt.clock.now(), day)


async def record_spend(rt: Services, budget_id: str, period: Period, spent_micros: int) -> None:
    """Settled spend as the budget meter's ledger keeps it (budget_spend), for one period."""
    async with rt.db.session() as session:
        row = await session.get(BudgetSpend, (budget_id, period.key))
        if row is None:
            session.add(
                BudgetSpend(
                    budget_id=budget_id,
                    window_key=period.key,
                    window_start=period.start,
                    spent_micros=spent_micros,
                    ceiling_micros=spent_micros,
                    updated_at=rt.clock.now(),
                )
            )
        else:
            row.spent_micros = row.ceiling_micros = spent_micros
