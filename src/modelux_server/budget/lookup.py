"""The budgets a proxy request falls under: its organization's, its project's, its key's."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.models import Budget
from modelux_server.proxy.asgi import header_value


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
    # worked out once per lookup, not per request: the alert thresholds in micro-dollars
    # (ascending), whether the budget refuses, and its name as a header value
    marks: tuple[int, ...] = field(init=False)
    blocking: bool = field(init=False)
    name_header: bytes = field(init=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "marks", tuple(sorted(-(-self.cap * percent // 100) for percent in self.thresholds)))
        set_(self, "blocking", self.action == "block")
        set_(self, "name_header", header_value(self.name))  # percent-encoded if not plain ASCII

    def crossed(self, before: int, after: int) -> bool:
        """Whether spend going from `before` to `after` reached an alert threshold."""
        return any(before < mark <= after for mark in self.marks)


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
