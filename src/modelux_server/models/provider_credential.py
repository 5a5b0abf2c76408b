from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base, Timestamped


class ProviderCredential(Timestamped, Base):
    """An upstream API key, encrypted at rest; only `hint` is ever shown."""

    __tablename__ = "provider_credentials"
    # at most one live default per organization and vendor (migration 0011)
    __table_args__ = (
        Index(
            "uq_provider_credentials_live_default",
            "org_id",
            "vendor",
            unique=True,
            postgresql_where=text("is_default AND deleted_at IS NULL"),
            sqlite_where=text("is_default AND deleted_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    vendor: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    base_url: Mapped[str | None] = mapped_column(String(500))
    secret_encrypted: Mapped[str] = mapped_column(Text)
    hint: Mapped[str] = mapped_column(String(40))
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    # the credential `vendor/model` and bare model names use (provider/service.py)
    is_default: Mapped[bool] = mapped_column(default=False, server_default=false())
