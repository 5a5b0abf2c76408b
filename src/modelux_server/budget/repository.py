"""SQL for budgets, the scopes they name, and their spend ledger.

A budget is deleted for good (its `budget_spend` rows go with it, ON DELETE
CASCADE): it has no history worth keeping once nobody enforces it.
"""

from __future__ import annotations

from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import get_owned, list_owned
from modelux_server.models import ApiKey, Budget, BudgetSpend, PlanState


async def get(session: AsyncSession, org_id: str, budget_id: str) -> Budget:
    return await get_owned(session, Budget, org_id, budget_id, label="budget")


async def find(session: AsyncSession, budget_id: str) -> Budget | None:
    """Any organization's budget by id (the alerts, which run for a request already checked)."""
    return await session.get(Budget, budget_id)


async def list_for_org(session: AsyncSession, org_id: str, page: PageRequest) -> Page[Budget]:
    return await list_owned(session, Budget, org_id, page)


async def name_taken(session: AsyncSession, org_id: str, name: str, *, other_than: str | None = None) -> bool:
    stmt = select(Budget.id).where(Budget.org_id == org_id, Budget.name == name)
    if other_than is not None:
        stmt = stmt.where(Budget.id != other_than)
    return (await session.execute(stmt.limit(1))).first() is not None


async def live_api_key(session: AsyncSession, org_id: str, key_id: str) -> ApiKey:
    """The organization's unrevoked key, or 404: a revoked key spends nothing more."""
    return await get_owned(session, ApiKey, org_id, key_id, label="api key", live=ApiKey.revoked_at.is_(None))


async def anchor_day(session: AsyncSession, org_id: str) -> int:
    """The day of month the organization's billing window renews on (billing/service.request_window)."""
    state = await session.get(PlanState, org_id)
    return state.anchor_at.day if state is not None else 1


async def spent(session: AsyncSession, budget_id: str, window_key: str) -> int:
    """Settled spend in micro-dollars that the ledger holds for one period (0 before any)."""
    stmt = select(BudgetSpend.spent_micros).where(
        BudgetSpend.budget_id == budget_id, BudgetSpend.window_key == window_key
    )
    value = (await session.execute(stmt)).scalar_one_or_none()
    return int(value or 0)


async def remove(session: AsyncSession, budget: Budget) -> None:
    await session.execute(sql_delete(Budget).where(Budget.id == budget.id))
