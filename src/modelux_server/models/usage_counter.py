from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base


class UsageCounter(Base):
    """The durable ledger of monthly request counts, one row per org and window.

    `reserved` is a ceiling written *before* admissions use it: the live
    counter never admits past it without extending it first, so after a crash
    (or Redis lost) the count restarts from `reserved` and can only be too high
    by at most one reservation block, never too low.
    """

    __tablename__ = "usage_counters"

    org_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    window_key: Mapped[str] = mapped_column(String(16), primary_key=True)
    window_start: Mapped[datetime]
    used: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]
