from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base, Timestamped


class CheckoutSession(Timestamped, Base):
    """A Stripe Checkout Session we created, and who asked for it.

    The plan change happens later, when Stripe reports the session complete;
    this row lets that change name its real initiator (source and actor), and
    lets reconciliation find a completed checkout whose webhook never came.
    """

    __tablename__ = "checkout_sessions"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # Stripe's cs_...
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    plan_id: Mapped[str] = mapped_column(String(40))
    interval: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | complete | expired
    completed_at: Mapped[datetime | None]
