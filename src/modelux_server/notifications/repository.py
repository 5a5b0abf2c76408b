"""SQL for the notification outbox, including its SQLite/PostgreSQL differences.

Two places differ by database:

* insert-if-absent: both use `INSERT ... ON CONFLICT (dedupe_key) DO NOTHING`
  (SQLite >= 3.24 speaks it too). It is preferred over SQLite's
  `INSERT OR IGNORE`, which would also swallow NOT NULL or CHECK violations
  and hide a bug as a "duplicate".
* claiming a due row: PostgreSQL takes it `FOR UPDATE SKIP LOCKED`, so
  workers of several processes each get a different row and never wait on
  one another. SQLite has one writer: its `BEGIN IMMEDIATE` (kit/db.py)
  already holds the database for the claiming transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.kit.db import insert_unless_present
from modelux_server.models import Notification


def _dialect(session: AsyncSession) -> str:
    assert session.bind is not None
    return session.bind.dialect.name


async def insert_if_absent(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert the row unless its `dedupe_key` exists; True when this call inserted it."""
    return await insert_unless_present(session, Notification, values, ["dedupe_key"])


async def dedupe_key_exists(session: AsyncSession, dedupe_key: str) -> bool:
    stmt = select(exists().where(Notification.dedupe_key == dedupe_key))
    return bool((await session.execute(stmt)).scalar_one())


async def claim_next(session: AsyncSession, now: datetime) -> Notification | None:
    """The oldest due queued row, held by this transaction until it ends."""
    stmt = (
        select(Notification)
        .where(Notification.status == "queued", Notification.next_attempt_at <= now)
        .order_by(Notification.next_attempt_at, Notification.created_at, Notification.id)
        .limit(1)
    )
    if _dialect(session) == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    result = await session.execute(stmt.execution_options(populate_existing=True))
    return result.scalar_one_or_none()


async def get(session: AsyncSession, notification_id: str, *, lock: bool = False) -> Notification | None:
    stmt = select(Notification).where(Notification.id == notification_id)
    if lock and _dialect(session) == "postgresql":
        stmt = stmt.with_for_update()
    return (await session.execute(stmt.execution_options(populate_existing=True))).scalar_one_or_none()


async def list_recent(
    session: AsyncSession, *, status: str | None, org_id: str | None, limit: int
) -> list[Notification]:
    stmt = select(Notification)
    if status is not None:
        stmt = stmt.where(Notification.status == status)
    if org_id is not None:
        stmt = stmt.where(Notification.org_id == org_id)
    stmt = stmt.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())
