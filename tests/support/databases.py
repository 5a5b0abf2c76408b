"""Real databases for tests: a migrated SQLite template and a PostgreSQL database.

PostgreSQL tests run against the local server (127.0.0.1:5432). Outside CI
they are skipped when it is not there; with CI=true its absence is a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg

from modelux_server.kit.migrations import upgrade

PG_HOST = os.environ.get("MODELUX_TEST_PG_HOST", "127.0.0.1")
PG_USER = os.environ.get("MODELUX_TEST_PG_USER", "postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"


def pg_admin_dsn() -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:5432/test"


async def _pg_reachable() -> bool:
    try:
        conn = await asyncpg.connect(pg_admin_dsn(), timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def _run(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even inside a running loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def pg_available() -> bool:
    return bool(_run(_pg_reachable()))


def create_pg_database() -> str:
    """Create and migrate a fresh database; returns its SQLAlchemy URL."""
    name = f"modelux_t_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        conn = await asyncpg.connect(pg_admin_dsn())
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    _run(create())
    url = f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:5432/{name}"
    upgrade(url)
    return url


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]

    async def drop() -> None:
        conn = await asyncpg.connect(pg_admin_dsn())
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    _run(drop())


def truncate_pg(url: str) -> None:
    _run(_truncate(url))


async def _truncate(url: str) -> None:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'alembic_version'"
        )
        if tables:
            names = ", ".join(f'"{t["tablename"]}"' for t in tables)
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


def sqlite_template(folder: Path) -> Path:
    path = folder / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


def sqlite_copy(template: Path, folder: Path) -> str:
    target = folder / "modelux.db"
    shutil.copyfile(template, target)
    return f"sqlite+aiosqlite:///{target}"
