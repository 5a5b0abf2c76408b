from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base, Timestamped

KINDS = (
    "soft_nudge",
    "hard_cap",
    "payment_failed",
    "plan_changed",
    "invitation",
    "verify_email",
    "budget_alert",
    "sales_inquiry",
    "contract_ending",
    "invoice_overdue",
)
STATUSES = ("queued", "sent", "failed")


class Notification(Timestamped, Base):
    """One email in the outbox, written in the transaction that caused it.

    `dedupe_key` is what makes an email happen at most once: every producer
    inserts with insert-if-absent on it, so retries, duplicate webhooks,
    concurrent admissions and other processes all land on the same row.
    The worker sends `queued` rows whose `next_attempt_at` has come.
    """

    __tablename__ = "notifications"
    __table_args__ = (Index(None, "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    recipients: Mapped[list[str]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(String(500))
    # the notice the email is rebuilt from at send time (see notifications/compose.py)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # derived from dedupe_key, so every attempt carries the same Message-ID
    message_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    # what the mailer said; mailer errors never carry credentials
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
