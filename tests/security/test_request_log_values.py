"""A request-log value the database cannot hold costs at most its own row.

Rows are written in batches (one COPY on PostgreSQL, one INSERT on SQLite), so
a single refused value used to fail the statement and lose every row in it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from modelux_server.models import RequestLog
from modelux_server.proxy.request_log import RequestLogWriter
from modelux_server.services import Services


def _row(request_id: str, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "request_id": request_id,
        "org_id": "org_1",
        "project_id": "proj_1",
        "api_key_id": "key_1",
        "endpoint": "chat.completions",
        "model_requested": "@main",
        "model_used": "openai/gpt-4o",
        "provider": "openai",
        "status": 200,
        "error_code": None,
        "counted": True,
        "latency_ms": 12.5,
        "upstream_latency_ms": 10.0,
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "total_tokens": 7,
        "stream": False,
        "trace": None,
        "created_at": datetime(2026, 11, 28, 12, 0, tzinfo=UTC),
    }
    row.update(changes)
    return row


async def _stored(rt: Services) -> dict[str, RequestLog]:
    async with rt.db.session() as session:
        rows = (await session.execute(select(RequestLog))).scalars().all()
    return {row.request_id: row for row in rows}


async def test_nul_and_overlong_text_are_stored_cleaned_with_the_rest_of_the_batch(rt: Services) -> None:
    writer = RequestLogWriter(rt.db)
    writer.add(_row("req_a"))
    writer.add(_row("req_nul", model_used="openai/gpt\x00-4o", provider="open\x00ai", trace='[{"x":"\x00"}]'))
    writer.add(_row("req_long", model_requested="m" * 256, model_used="openai/" + "m" * 300))
    writer.add(_row("req_b"))
    await writer.flush()

    stored = await _stored(rt)
    assert set(stored) == {"req_a", "req_nul", "req_long", "req_b"}
    assert stored["req_nul"].model_used == "openai/gpt\ufffd-4o"
    assert stored["req_nul"].provider == "open\ufffdai"
    assert "\x00" not in (stored["req_nul"].trace or "")
    assert stored["req_long"].model_requested == "m" * 200
    assert stored["req_long"].model_used == ("openai/" + "m" * 300)[:200]
    assert writer.dropped == 0


async def test_a_row_the_database_refuses_does_not_drop_the_others(
    rt: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    writer = RequestLogWriter(rt.db)
    writer.add(_row("req_first"))
    await writer.flush()

    for request_id in ("req_1", "req_first", "req_2"):  # the second one is already stored
        writer.add(_row(request_id, model_used=f"openai/{request_id}"))
    await writer.flush()

    stored = await _stored(rt)
    assert set(stored) == {"req_first", "req_1", "req_2"}
    assert stored["req_first"].model_used == "openai/gpt-4o"
    assert writer.dropped == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("req_first" in r.getMessage() for r in caplog.records)
