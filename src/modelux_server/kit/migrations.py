"""Alembic, driven from code: `modelux migrate` and the start-up check.

The migration scripts ship inside the package so an installed server can
migrate its own database without a checkout.
"""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from modelux_server.kit.db import Database


class NotMigrated(Exception):
    """The database schema is behind the code."""


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("modelux_server") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations (synchronous: alembic runs its own event loop for async URLs)."""
    command.upgrade(alembic_config(url), revision)


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


async def ensure_migrated(db: Database) -> None:
    head = head_revision(db.url)

    def current(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with db.engine.connect() as conn:
        revision = await conn.run_sync(current)
    if revision != head:
        raise NotMigrated(
            f"The database is at schema revision {revision or 'none'}, the code needs {head}. "
            "Run `modelux migrate` first."
        )
