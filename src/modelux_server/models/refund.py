from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base


class Refund(Base):
    """Money we give back on our own initiative: one row per subscription and kind.

    Kinds: `unused_time` (a subscription ended early: leaving for the free
    plan, or cancelling in the portal) and `duplicate_subscription` (a second
    live subscription for an organization that already pays for one).

    Status: `due` (written in the transaction that applied the end, so it
    cannot be lost), `paying` (claimed by one process, before any money
    moves), `done`, or `failed` (Stripe refused part-way; the operator
    finishes it). A row is paid at most once: only the process that moved it
    from due to paying sends money.
    """

    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("kind", "subscription_id", name="uq_refunds_kind_subscription"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    subscription_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10), default="due", index=True)
    # the instant the subscription ended: the unused time is measured from it
    ended_at: Mapped[datetime]
    planned_cents: Mapped[int] = mapped_column(Integer, default=0)
    refunded_cents: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
