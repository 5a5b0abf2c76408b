"""The budgets a proxy request falls under: its organization's, its project's, its key's."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.models import Budget


@dataclass(frozen=True, slots=True)
class BudgetRule:
    """What the proxy's hot path needs of a `budgets` row (cached by proxy/lookups.py)."""

    id: str
    org_id: str
    name: str
    cap: int  # micro-dollars
    period: str  # daily | weekly | monthly | billing
    action: str  # block | alert
    thresholds: tuple[int, ...]

    @property
    def blocking(self) -> bool:
        return self.action == "block"


async def applicable(session: AsyncSession, org_id: str, project_id: str, key_id: str) -> list[Budget]:
    rows = await session.scalars(
        select(Budget)
        .where(
            Budget.org_id == org_id,
            or_(
                Budget.scope == "organization",
                and_(Budget.scope == "project", Budget.scope_id == project_id),
                and_(Budget.scope == "api_key", Budget.scope_id == key_id),
            ),
        )
        .order_by(Budget.created_at, Budget.id)
    )
    return list(rows)
