from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base, Timestamped


class CustomPlan(Timestamped, Base):
    """An Enterprise plan made for one customer by the operator."""

    __tablename__ = "custom_plans"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # limit name -> int, or null for unlimited
    limits: Mapped[dict[str, Any]] = mapped_column(JSON)
    features: Mapped[list[str]] = mapped_column(JSON)
    data_residency: Mapped[str | None] = mapped_column(String(40))
    invoicing: Mapped[str | None] = mapped_column(String(100))
    support_channel: Mapped[str | None] = mapped_column(Text)
    sla: Mapped[str | None] = mapped_column(Text)
