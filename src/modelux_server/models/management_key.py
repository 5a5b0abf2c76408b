from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base, Timestamped


class ManagementKey(Timestamped, Base):
    """An organization key (`mlx_mk_`) for the management API and MCP.

    It acts with a role, like a member: a `member` key can read but not
    change the plan or create resources.
    """

    __tablename__ = "management_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(40))
    created_by: Mapped[str | None] = mapped_column(String(40))
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # written by a background flush, at most once a minute (auth/last_used.py)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
