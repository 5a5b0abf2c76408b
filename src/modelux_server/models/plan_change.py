from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base, Timestamped

SOURCES = ("api", "dashboard", "mcp", "portal", "webhook", "operator", "reconcile")


class PlanChange(Timestamped, Base):
    """A record of every plan change: who, from, to, when, through what."""

    __tablename__ = "plan_changes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    from_plan: Mapped[str] = mapped_column(String(40))
    to_plan: Mapped[str] = mapped_column(String(40))
    from_interval: Mapped[str] = mapped_column(String(10))
    to_interval: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str | None] = mapped_column(String(100))
