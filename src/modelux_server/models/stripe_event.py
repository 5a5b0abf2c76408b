from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base


class StripeEvent(Base):
    """A Stripe webhook event that has been applied, keyed by Stripe's event id.

    The row is inserted in the same transaction as the event's effect, so a
    redelivered event finds it and changes nothing (exactly-once processing
    on top of Stripe's at-least-once delivery).
    """

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    # no foreign key: an event may concern a customer we cannot map to an org
    org_id: Mapped[str | None] = mapped_column(String(40), index=True)
    received_at: Mapped[datetime]
