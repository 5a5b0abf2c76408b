from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base, Timestamped


class DashboardSession(Timestamped, Base):
    """A logged-in browser. The cookie holds a random token; only its hash is here.

    Kept server-side (rather than a stateless signed cookie) so that logging
    out really ends the session: a copied cookie stops working at once.
    """

    __tablename__ = "dashboard_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
