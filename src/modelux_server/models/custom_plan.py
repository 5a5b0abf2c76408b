from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base, Timestamped


class CustomPlan(Timestamped, Base):
    """One version of an Enterprise plan made for one customer by the operator.

    Editing a plan adds a version (the organization's `plan_states.custom_plan_id`
    moves to it); earlier versions stay as the plan's history.
    """

    __tablename__ = "custom_plans"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    # 1, 2, ... per organization, across every Enterprise plan it has had
    version: Mapped[int] = mapped_column(Integer, default=1)
    name: Mapped[str] = mapped_column(String(200))
    # limit name -> int, or null for unlimited
    limits: Mapped[dict[str, Any]] = mapped_column(JSON)
    features: Mapped[list[str]] = mapped_column(JSON)
    # the region its data stays in (the residency issue reads it)
    data_residency: Mapped[str | None] = mapped_column(String(40))
    # free text kept from plans made before terms existed
    invoicing: Mapped[str | None] = mapped_column(String(100))
    support_channel: Mapped[str | None] = mapped_column(Text)
    sla: Mapped[str | None] = mapped_column(Text)
    # the commercial terms (enterprise/terms.py): price, contract, payment terms,
    # billing contact, support and SLA
    terms: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # who made this version (an operator's name, or "system:renewal")
    actor: Mapped[str | None] = mapped_column(String(100), default=None)
    # the Stripe objects behind invoice terms (a per-customer price, its subscription)
    stripe_price_id: Mapped[str | None] = mapped_column(String(64), default=None)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
