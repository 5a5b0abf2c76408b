"""Engine and sessions for SQLite (embedded) and PostgreSQL.

Services never commit: the endpoint (or job) that opened the session owns the
transaction. Concurrency rules differ by database and live here:

* PostgreSQL: a plan-limited create locks the organization's plan row with
  `SELECT ... FOR UPDATE`, counts, then inserts, so two creates for the same
  organization cannot both see the last free slot.
* SQLite: every transaction starts with `BEGIN IMMEDIATE`, taking the write
  lock up front. pysqlite's default deferred begin lets two transactions read
  the same count and only collide at write time; immediate begin makes them
  queue instead (WAL keeps plain reads from waiting on it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from modelux_server.kit.files import private_file

# The transaction a service runs in, by a name the entry points (dashboard,
# MCP) can write without importing SQLAlchemy themselves.
Session = AsyncSession


def create_engine(url: str, *, immediate: bool = True, **kwargs: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            private_file(Path(path))
        engine = create_async_engine(
            url, connect_args={"timeout": 30}, pool_size=8, max_overflow=16, **kwargs
        )
        _sqlite_transactions(engine, "BEGIN IMMEDIATE" if immediate else "BEGIN")
        return engine
    return create_async_engine(url, pool_size=5, max_overflow=15, pool_pre_ping=True, **kwargs)


def _sqlite_transactions(engine: AsyncEngine, begin: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # hand transaction control to SQLAlchemy (see module docstring)
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # Reads that run beside a write transaction (the live counter, the
        # proxy's lookups) must not queue for SQLite's write lock, or a read
        # made from inside a write transaction would wait for itself.
        self.read_engine = create_engine(url, immediate=False) if url.startswith("sqlite") else self.engine
        self.read_sessionmaker = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self._write_lock: asyncio.Lock | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def _write_turn(self) -> AsyncIterator[None]:
        """On SQLite, queue this process's frequent writers in Python.

        They would otherwise meet on the database's single write lock, where a
        waiter sleeps in SQLite's busy handler with growing back-off (up to
        100 ms) even when the lock frees sooner; that sleep showed up in the
        proxy's p99 whenever the counter reserved while the request log was
        being written. An asyncio lock hands the turn over at once and in order.
        PostgreSQL needs no such queue.
        """
        if not self.is_sqlite:
            yield
            return
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        try:
            async with asyncio.timeout(60):
                await self._write_lock.acquire()
        except TimeoutError:
            raise RuntimeError(
                "waited 60 s for the SQLite write turn (a write session opened inside another?)"
            ) from None
        try:
            yield
        finally:
            self._write_lock.release()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def hot_session(self) -> AsyncIterator[AsyncSession]:
        """A write session for the process's frequent background writers.

        Only for self-contained writes that open no other session inside (the
        counter ledger, the request log): they queue for their turn in Python
        (see `_write_turn`), which a nested session would wait on forever.
        """
        async with self._write_turn(), self.session() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


async def lock_row(session: AsyncSession, model: Any, key: Any) -> Any:
    """Load one row and hold it for the rest of the transaction.

    On SQLite the write lock is already held since `BEGIN IMMEDIATE`.
    """
    stmt = select(model).where(model.__mapper__.primary_key[0] == key)
    if session.bind is not None and session.bind.dialect.name != "sqlite":
        stmt = stmt.with_for_update()
    result = await session.execute(stmt.execution_options(populate_existing=True))
    return result.scalar_one_or_none()


async def insert_unless_present(
    session: AsyncSession, model: Any, values: dict[str, Any], unique: list[str]
) -> bool:
    """Insert one row unless a row with the same `unique` columns exists; True if inserted now.

    One statement (ON CONFLICT DO NOTHING on both dialects), so two
    concurrent writers of the same row never both insert and neither fails.
    """
    assert session.bind is not None
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(model).values(**values).on_conflict_do_nothing(index_elements=unique)
    result: Any = await session.execute(stmt)
    return bool(result.rowcount == 1)


# SQLSTATE classes of a database that is down or going away, rather than of a
# bad statement: 08 connection exception, 57 operator intervention (shutdown,
# cannot connect now, database dropped), 53 insufficient resources.
_UNAVAILABLE_CLASSES = ("08", "57", "53")


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) means the database cannot be reached right now.

    Such a failure is our dependency's outage, answered 503 with a retry hint,
    not a 500 bug with a traceback.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (ConnectionError, TimeoutError, PoolTimeout)) or (
            isinstance(seen, OSError) and not isinstance(seen, FileNotFoundError)
        ):
            return True
        state = getattr(seen, "sqlstate", None)
        if isinstance(state, str):
            if state[:2] in _UNAVAILABLE_CLASSES:
                return True
            # "database ... is not currently accepting connections" (ALLOW_CONNECTIONS false)
            if state == "55000" and "accepting connections" in str(seen):
                return True
        seen = seen.__cause__ or seen.__context__
    return False
