from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base, Timestamped


class SalesInquiry(Timestamped, Base):
    """A "Talk to sales" request from an organization, emailed to the sales address."""

    __tablename__ = "sales_inquiries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    # who asked: a dashboard user's email, or the management key's id
    requested_by: Mapped[str] = mapped_column(String(320))
    contact_email: Mapped[str | None] = mapped_column(String(320), default=None)
    seats: Mapped[int | None] = mapped_column(Integer, default=None)
    monthly_requests: Mapped[int | None] = mapped_column(BigInteger, default=None)
    needs: Mapped[list[str]] = mapped_column(JSON)
    message: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20))  # api | dashboard | mcp
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
