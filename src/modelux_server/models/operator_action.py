from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base, Timestamped


class OperatorAction(Timestamped, Base):
    """What an operator did, and to which organization (the audit log reads these)."""

    __tablename__ = "operator_actions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    operator: Mapped[str] = mapped_column(String(100))
    # api | cli | system
    via: Mapped[str] = mapped_column(String(10))
    action: Mapped[str] = mapped_column(String(60))
    org_id: Mapped[str | None] = mapped_column(ForeignKey("organizations.id"), index=True, default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
