from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base, Timestamped


class User(Timestamped, Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    # argon2id; null for an invited member who has not set one yet
    password_hash: Mapped[str | None] = mapped_column(String(200))
    # set when the person proved they read mail at `email` (a link, an invitation)
    email_verified_at: Mapped[datetime | None] = mapped_column(default=None)
