from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base, Timestamped


class AuditEvent(Timestamped, Base):
    """One change on record, written in the transaction of the change itself.

    Append-only: nothing in the code updates or deletes a row. `hash` covers the
    event's content and the previous event's hash in the same organization
    (`seq` orders them), so an edited or removed row breaks the chain (audit/chain.py).
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("org_id", "seq"),
        Index(None, "org_id", "created_at"),
        Index(None, "org_id", "action"),
        Index(None, "org_id", "target_type", "target_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    # who: user | management_key | scim_token | operator | stripe | system
    actor_type: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str | None] = mapped_column(String(100), default=None)
    # a person's email, a key's name: what a reviewer reads
    actor_label: Mapped[str | None] = mapped_column(String(320), default=None)
    # through which door: api | dashboard | mcp | webhook | portal | cli | scim | job
    source: Mapped[str | None] = mapped_column(String(20), default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(500), default=None)
    request_id: Mapped[str | None] = mapped_column(String(40), default=None)
    action: Mapped[str] = mapped_column(String(80))
    target_type: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(100), default=None)
    # field -> {"from": ..., "to": ...}, secrets redacted
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The newest event of each organization's chain; its row lock orders appends."""

    __tablename__ = "audit_heads"

    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
