from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base


class PlanState(Base):
    """An organization's plan and subscription: one row per organization.

    This row is also the organization's lock: creates that are limited by the
    plan and plan changes take it `FOR UPDATE`, so they serialize per org.
    """

    __tablename__ = "plan_states"

    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    plan_id: Mapped[str] = mapped_column(String(40))
    custom_plan_id: Mapped[str | None] = mapped_column(String(40))
    interval: Mapped[str] = mapped_column(String(10), default="monthly")
    status: Mapped[str] = mapped_column(String(30), default="active")
    billing_email: Mapped[str | None] = mapped_column(String(320))
    stripe_customer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # the request window's day of month comes from this instant (UTC)
    anchor_at: Mapped[datetime]
    current_period_end: Mapped[datetime | None]
    # when the subscription went past_due (the first failed payment); bounds the grace
    past_due_since: Mapped[datetime | None]
    # the Stripe customer's tax IDs ([{"type", "value"}]), kept current by customer.tax_id.* events
    tax_ids: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    # a change we are asking Stripe for right now ({"subscription_id", "price_id",
    # "source", "actor"}): its webhook may land before our answer does, and
    # must then credit the change to whoever asked rather than to the portal
    pending_change: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime]
    # bumped on every change; lets webhook handling ignore stale snapshots
    revision: Mapped[int] = mapped_column(Integer, default=0)
