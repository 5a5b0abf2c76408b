from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from modelux_server.models.base import Base


class RequestLog(Base):
    """One row per proxy request, written off the hot path in batches."""

    __tablename__ = "request_logs"

    request_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(40), index=True)
    project_id: Mapped[str | None] = mapped_column(String(40))
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    endpoint: Mapped[str] = mapped_column(String(40))
    model_requested: Mapped[str | None] = mapped_column(String(200))
    model_used: Mapped[str | None] = mapped_column(String(200))
    provider: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[int] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(60))
    counted: Mapped[bool]
    latency_ms: Mapped[float] = mapped_column(Float)
    upstream_latency_ms: Mapped[float | None] = mapped_column(Float)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    total_tokens: Mapped[int | None] = mapped_column(Integer)
    stream: Mapped[bool]
    # routing decision trace (attempts, ensemble votes) as compact JSON text
    trace: Mapped[str | None] = mapped_column(String(4000))
    created_at: Mapped[datetime] = mapped_column(index=True)
