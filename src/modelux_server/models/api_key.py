from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base, Timestamped


class ApiKey(Timestamped, Base):
    """A project key (`mlx_sk_`) used by proxy callers."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(40))
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # requests per minute for this key alone; None: the plan's or the server's default
    rate_limit_per_minute: Mapped[int | None] = mapped_column(default=None)
    # written by a background flush, at most once a minute (auth/last_used.py)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    # from this instant on the proxy refuses the key; None: it never expires
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
