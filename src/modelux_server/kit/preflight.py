"""Start-up checks that turn an unreachable dependency into one readable line.

`modelux serve`, `modelux worker` and `modelux migrate` call these before
anything else touches the database or Redis, so an operator sees

    error: cannot reach PostgreSQL at db.internal:5432/modelux (connection refused)

instead of a driver's traceback. URLs are shown without their password.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

TIMEOUT = 5.0


class Unreachable(Exception):
    """A dependency the settings name cannot be used; the message is one line for the operator."""


def _reason(exc: BaseException) -> str:
    """The innermost cause, on one line, without the driver's class path."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        inner = exc.__cause__ or exc.__context__
        assert inner is not None
        exc = inner
    if isinstance(exc, TimeoutError):
        return f"no answer within {TIMEOUT:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text_ = " ".join(str(exc).split()) or type(exc).__name__
    return text_[:200]


def where(url: str) -> str:
    """host:port/database of a database URL, never its password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    host = parsed.host or "localhost"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{host}{port}/{parsed.database or ''}"


async def check_database(url: str) -> None:
    """PostgreSQL answers `SELECT 1` (SQLite is a file the server creates itself; not checked)."""
    if not url.startswith("postgresql"):
        return
    name = "PostgreSQL"
    engine = create_async_engine(url, pool_pre_ping=False)
    try:
        async with asyncio.timeout(TIMEOUT), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - every way of failing becomes one line
        raise Unreachable(f"cannot reach {name} at {where(url)} ({_reason(exc)})") from None
    finally:
        await engine.dispose()


async def check_redis(url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
    parts = urlsplit(url)
    shown = f"{parts.hostname or 'localhost'}:{parts.port or 6379}" if parts.scheme != "unix" else parts.path
    try:
        async with asyncio.timeout(TIMEOUT):
            await client.ping()
    except Exception as exc:  # noqa: BLE001
        raise Unreachable(f"cannot reach Redis at {shown} ({_reason(exc)})") from None
    finally:
        await client.aclose()


class DataDirLocked(Exception):
    """Another `modelux serve` holds the embedded database."""


def lock_embedded_database(database_path: Path) -> IO[str]:
    """Hold an exclusive lock beside the SQLite file for this process's lifetime.

    In-process counters are exact only within one process: a second server
    on the same file would admit against counts of its own and show other
    meters. The lock is an OS lock (flock), so a process that dies for any
    reason, `kill -9` included, releases it. Keep the returned file open.
    """
    lock_path = database_path.with_name(database_path.name + ".serve-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_path, "a+")  # noqa: SIM115 - held open for the process's lifetime
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise DataDirLocked(
            f"{database_path} is in use by another `modelux serve` ({holder}). The embedded "
            "database serves one process; for more, set MODELUX_DATABASE_URL (PostgreSQL) "
            "and MODELUX_REDIS_URL."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle
