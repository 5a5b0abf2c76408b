"""When each key was last used, kept off the hot path.

The proxy (project API keys) and the management API and MCP (management keys) only
`note` a use: one dict assignment in this process's memory, no I/O. A background task
writes what accumulated once a `interval` (a minute), one statement per kind of key, so
a key is written at most once a minute per process however busy it is, and a request
never waits on the write. The write only moves `last_used_at` forward
(auth/repository.py `stamp_last_used`), so several processes flushing in any order
agree on the latest use.

What is noted but not yet written is lost if the process is killed; the column is
therefore "last used, to within a minute" (a clean shutdown writes it all).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from modelux_server.auth import repository
from modelux_server.kit.clock import Clock
from modelux_server.kit.db import Database
from modelux_server.services import Services

log = logging.getLogger("modelux.auth")

API_KEY = "api_key"
MANAGEMENT_KEY = "management_key"
KINDS = (API_KEY, MANAGEMENT_KEY)
INTERVAL_SECONDS = 60.0


class LastUsed:
    """A notebook of key uses, written to the database in the background."""

    def __init__(self, db: Database, clock: Clock, interval: float = INTERVAL_SECONDS) -> None:
        self.db = db
        self.clock = clock
        self.interval = interval
        self._pending: dict[str, dict[str, datetime]] = {kind: {} for kind in KINDS}
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._flushing = asyncio.Lock()

    def note(self, kind: str, key_id: str) -> None:
        """The key was used now. Called on every request: no I/O, no await."""
        self._pending[kind][key_id] = self.clock.now()

    def pending(self, kind: str) -> dict[str, datetime]:
        """What is noted and not yet written (for tests and diagnostics)."""
        return dict(self._pending[kind])

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.interval)
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - kept for the next round (see flush)
                log.exception("last-used flush failed")

    async def flush(self) -> None:
        """Write every use noted before this call."""
        async with self._flushing:
            for kind in KINDS:
                batch, self._pending[kind] = self._pending[kind], {}
                if not batch:
                    continue
                try:
                    async with self.db.hot_session() as session:
                        await repository.stamp_last_used(session, kind, batch)
                except BaseException:
                    # back into the notebook (a newer use noted meanwhile wins), tried next round
                    for key_id, at in batch.items():
                        newer = self._pending[kind].get(key_id)
                        if newer is None or newer < at:
                            self._pending[kind][key_id] = at
                    raise

    async def close(self) -> None:
        """Write what is still noted, then stop (asked to finish, not cancelled mid-write)."""
        self._closing.set()
        if self._task is not None:
            await self._task
        try:
            await self.flush()
        except Exception:  # noqa: BLE001 - shutting down: report, and let the rest stop
            log.exception("last-used: uses of %d key(s) not written at shutdown", self._count())

    def _count(self) -> int:
        return sum(len(batch) for batch in self._pending.values())


@asynccontextmanager
async def last_used_lifetime(rt: Services) -> AsyncIterator[LastUsed]:
    """The notebook of a serving process, flushed in the background while it runs."""
    notebook = LastUsed(rt.db, rt.clock)
    rt.last_used = notebook
    await notebook.start()
    try:
        yield notebook
    finally:
        await notebook.close()
        rt.last_used = None
