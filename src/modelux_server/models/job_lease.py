from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base


class JobLease(Base):
    """One scheduled background job, and who (if anyone) is running it now.

    A process runs a job only after moving its row from free to held by
    itself in one conditional UPDATE (kit/schedule.py): the row is the claim,
    on SQLite and PostgreSQL alike, so three workers racing for a due job run
    it once. A holder that dies stops renewing `expires_at`; once that passes,
    another worker claims the job and runs it again, because `runs` did not move.
    """

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # the claim lasts until then; also "not before" after a failed run
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # completed runs: the claim names the count it saw, so a run that finished
    # between another worker's read and claim is not started a second time
    runs: Mapped[int] = mapped_column(Integer, default=0)
    last_finished_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
