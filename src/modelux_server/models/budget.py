from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base


class Budget(Base):
    """A spend cap in USD on an organization, a project or an API key.

    Money is kept in integer micro-dollars (`cap_micros`): sums over millions of
    requests stay exact, and the counters (budget/meter.py) add integers atomically.
    `scope_id` is the organization's, project's or key's id, by `scope`.
    """

    __tablename__ = "budgets"
    __table_args__ = (
        UniqueConstraint("org_id", "name", name="uq_budgets_org_name"),
        Index("ix_budgets_org_scope", "org_id", "scope", "scope_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(40), ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(20))  # organization | project | api_key
    scope_id: Mapped[str] = mapped_column(String(40))
    cap_micros: Mapped[int] = mapped_column(BigInteger)
    period: Mapped[str] = mapped_column(String(20))  # daily | weekly | monthly | billing
    action: Mapped[str] = mapped_column(String(20))  # block | alert
    thresholds: Mapped[list[int]] = mapped_column(JSON)  # percents, ascending, e.g. [50, 80, 100]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class BudgetSpend(Base):
    """The durable ledger of a budget's spend, one row per budget and period.

    Like `usage_counters`: `spent` is settled cost, `ceiling` a bound written before
    the live counter lets reservations past it, so after a crash the spend restarts
    from `ceiling` and is at most one block too high, never too low.
    """

    __tablename__ = "budget_spend"

    budget_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("budgets.id", ondelete="CASCADE"), primary_key=True
    )
    window_key: Mapped[str] = mapped_column(String(24), primary_key=True)
    window_start: Mapped[datetime]
    spent_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    ceiling_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]
