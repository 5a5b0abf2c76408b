"""Request log rows, written off the hot path in batches.

The proxy hands a row to `RequestLogWriter.add` (no I/O); a background task
inserts what accumulated every `flush_ms`. Rows still in memory when the
process is killed are lost: the log is an observability record, while the
billing count lives in the counter's ledger and is never derived from it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import insert

from modelux_server.kit.db import Database
from modelux_server.models import RequestLog

log = logging.getLogger("modelux.proxy")


class RequestLogWriter:
    def __init__(self, db: Database, flush_ms: int = 200, max_pending: int = 100_000) -> None:
        self.db = db
        self.flush_interval = flush_ms / 1000
        self.max_pending = max_pending
        self._pending: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def add(self, row: dict[str, Any]) -> None:
        if len(self._pending) >= self.max_pending:
            self.dropped += 1  # the database is far behind: shed log rows, not traffic
            return
        self._pending.append(row)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - keep logging; rows of this batch are lost
                log.exception("request log flush failed")

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        for start in range(0, len(batch), 500):
            async with self.db.session() as session:
                await session.execute(insert(RequestLog), batch[start : start + 500])

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.flush()
