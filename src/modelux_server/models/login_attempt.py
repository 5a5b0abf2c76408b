from __future__ import annotations

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base, Timestamped


class LoginAttempt(Timestamped, Base):
    """One failed dashboard login, keyed by a hash of (email, client address).

    In the database so that every `modelux serve` process sees the same
    count; rows older than the window are pruned as new ones arrive.
    """

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_key_created_at", "key", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64))
