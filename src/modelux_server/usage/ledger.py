"""The durable ledger behind every counter backend (SQL, both dialects).

Writes only ever move numbers up (`GREATEST`/`max`), so a late or repeated
write can never rewind a live counter.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from modelux_server.kit.clock import Clock
from modelux_server.kit.db import Database
from modelux_server.kit.windows import Window
from modelux_server.models import UsageCounter
from modelux_server.usage.counter import Admission


class Ledger:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def _upsert(self, org_id: str, window: Window, used: int, reserved: int):  # type: ignore[no-untyped-def]
        insert = sqlite_insert if self.db.is_sqlite else pg_insert
        greatest = func.max if self.db.is_sqlite else func.greatest
        stmt = insert(UsageCounter).values(
            org_id=org_id,
            window_key=window.key,
            window_start=window.start,
            used=used,
            reserved=reserved,
            updated_at=self.clock.now(),
        )
        return stmt, greatest

    async def load(self, org_id: str, window: Window) -> tuple[int, int]:
        """(used, reserved) for a window; (0, 0) when nothing was counted yet."""
        async with self.db.read_sessionmaker() as session:
            row = (
                await session.execute(
                    select(UsageCounter.used, UsageCounter.reserved).where(
                        UsageCounter.org_id == org_id, UsageCounter.window_key == window.key
                    )
                )
            ).first()
            await session.commit()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def reserve(self, org_id: str, window: Window, at_least: int) -> int:
        """Raise the durable ceiling to at least `at_least`; returns the ceiling now stored."""
        stmt, greatest = self._upsert(org_id, window, 0, at_least)
        stmt = stmt.on_conflict_do_update(
            index_elements=["org_id", "window_key"],
            set_={
                "reserved": greatest(UsageCounter.reserved, stmt.excluded.reserved),
                "updated_at": stmt.excluded.updated_at,
            },
        ).returning(UsageCounter.reserved)
        async with self.db.hot_session() as session:
            return int((await session.execute(stmt)).scalar_one())

    async def record_used(self, counts: list[tuple[str, Window, int]], *, settle: bool = False) -> None:
        """Store exact counts (monotonic). With `settle`, the ceiling drops to the
        exact count too: a clean shutdown leaves no over-count behind."""
        if not counts:
            return
        async with self.db.hot_session() as session:
            for org_id, window, used in counts:
                stmt, greatest = self._upsert(org_id, window, used, used)
                updates = {
                    "used": greatest(UsageCounter.used, stmt.excluded.used),
                    "updated_at": stmt.excluded.updated_at,
                }
                if settle:
                    updates["reserved"] = greatest(UsageCounter.used, stmt.excluded.used)
                else:
                    updates["reserved"] = greatest(UsageCounter.reserved, stmt.excluded.used)
                await session.execute(
                    stmt.on_conflict_do_update(index_elements=["org_id", "window_key"], set_=updates)
                )


class LedgerReader:
    """A `RequestCounter` that only reads the ledger: what an operator command uses.

    It admits nothing (a CLI process serves no proxy traffic); `used` is the
    ledger's count, exact as of the serving processes' last flush.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def admit(self, org_id: str, window: Window, limit: int | None) -> Admission:
        raise RuntimeError("an operator command admits no proxy requests")

    async def used(self, org_id: str, window: Window) -> int:
        used, _reserved = await self.ledger.load(org_id, window)
        return used

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
