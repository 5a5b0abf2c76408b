"""`modelux admin audit verify` on SQLite and PostgreSQL: every chain holds, then a row edited
with SQL is named as the first broken link of its organization (exit 1), the others still hold."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from modelux_server.config import Settings
from modelux_server.kit.db import Database
from tests.admin.test_admin_cli import Console


@pytest.fixture
def console(settings: Settings) -> Console:
    return Console(settings)


def _sql(settings: Settings, statement: str, **params: str) -> str | None:
    """Run one statement with a connection of our own (as someone with database access would)."""

    async def run() -> str | None:
        db = Database(settings.resolved_database_url)
        try:
            async with db.session() as session:
                result = await session.execute(text(statement), params)
                return result.scalar() if result.returns_rows else None
        finally:
            await db.dispose()

    return asyncio.run(run())


def test_verify_passes_then_names_the_row_edited_with_sql(console: Console, settings: Settings) -> None:
    acme = console.bootstrap("Acme", "ops@acme.test")
    globex = console.bootstrap("Globex", "hank@globex.test")
    lines = console("admin", "audit", "verify").stdout.splitlines()
    assert sorted(line.split()[:2] for line in lines) == sorted([[acme, "ok"], [globex, "ok"]])
    events = int(next(line for line in lines if line.startswith(acme)).split()[2])
    assert events >= 1
    assert console("admin", "audit", "verify", "ops@acme.test").stdout.split()[:2] == [acme, "ok"]

    target = _sql(
        settings,
        "UPDATE audit_events SET actor_label = 'someone else' WHERE org_id = :org AND seq = 1 RETURNING id",
        org=acme,
    )
    assert target is not None and target.startswith("aud_")
    refused = console("admin", "audit", "verify", ok=False)
    assert refused.exit_code == 1
    assert f"{acme}  BROKEN  at event 1 ({target}): its content does not match its hash" in refused.stdout
    assert f"{globex}  ok" in refused.stdout
    assert refused.stderr == "error: 1 of 2 organization(s) have an audit chain that does not hold\n"
    assert console("admin", "audit", "verify", acme, ok=False).exit_code == 1
    assert console("admin", "audit", "verify", "globex").stdout.split()[:2] == [globex, "ok"]

    missing = console("admin", "audit", "verify", "nobody@nowhere.test", ok=False)
    assert missing.exit_code == 1 and "No organization matches 'nobody@nowhere.test'" in missing.stderr
