from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base, Timestamped

# Stripe's invoice statuses past draft; a manual invoice uses the same words
STATUSES = ("open", "paid", "past_due", "void", "uncollectible")


class EnterpriseInvoice(Timestamped, Base):
    """An Enterprise organization's invoice: Stripe's (mirrored from its webhooks) or one
    the operator recorded in manual billing mode."""

    __tablename__ = "enterprise_invoices"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    custom_plan_id: Mapped[str | None] = mapped_column(String(40), default=None)
    source: Mapped[str] = mapped_column(String(10))  # stripe | manual
    stripe_invoice_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    number: Mapped[str | None] = mapped_column(String(100), default=None)
    status: Mapped[str] = mapped_column(String(20))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    due_at: Mapped[datetime | None] = mapped_column(default=None)
    paid_at: Mapped[datetime | None] = mapped_column(default=None)
    hosted_url: Mapped[str | None] = mapped_column(String(500), default=None)
    po_number: Mapped[str | None] = mapped_column(String(100), default=None)
    period_start: Mapped[datetime | None] = mapped_column(default=None)
    period_end: Mapped[datetime | None] = mapped_column(default=None)
    # when the operator was told it is overdue (once per invoice)
    overdue_notified_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime]
