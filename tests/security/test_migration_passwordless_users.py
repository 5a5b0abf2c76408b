"""Migration 0006 removes the passwordless users the old `POST /members` created,
with their memberships, and keeps everyone who can log in."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from sqlalchemy import text

from modelux_server.kit.db import create_engine
from modelux_server.kit.migrations import alembic_config, head_revision, upgrade
from tests.conftest import START

ROWS = [
    "INSERT INTO organizations (id, name, created_at) VALUES ('org_a', 'Acme', :at)",
    "INSERT INTO users (id, email, name, password_hash, created_at)"
    " VALUES ('usr_owner', 'owner@acme.test', NULL, 'hash', :at)",
    "INSERT INTO users (id, email, name, password_hash, created_at)"
    " VALUES ('usr_ghost', 'ghost@mail.test', NULL, NULL, :at)",
    "INSERT INTO memberships (id, org_id, user_id, role, created_at)"
    " VALUES ('mem_owner', 'org_a', 'usr_owner', 'owner', :at)",
    "INSERT INTO memberships (id, org_id, user_id, role, created_at)"
    " VALUES ('mem_ghost', 'org_a', 'usr_ghost', 'admin', :at)",
    "INSERT INTO dashboard_sessions (id, token_hash, user_id, org_id, expires_at, created_at)"
    " VALUES ('ds_ghost', 'h', 'usr_ghost', 'org_a', :at, :at)",
]


async def _execute(url: str, statements: list[str]) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement), {"at": START})
    finally:
        await engine.dispose()


async def _rows(url: str, query: str) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(text(query))]
    finally:
        await engine.dispose()


def test_upgrading_to_0006_deletes_passwordless_users_and_their_memberships(db_url: str) -> None:
    command.downgrade(alembic_config(db_url), "0005")
    try:
        asyncio.run(_execute(db_url, ROWS))
    finally:
        # the PostgreSQL database is shared by the tests of this process: back to head whatever happens
        upgrade(db_url)
    assert asyncio.run(_rows(db_url, "SELECT version_num FROM alembic_version")) == [(head_revision(db_url),)]
    users = asyncio.run(_rows(db_url, "SELECT id, email_verified_at IS NOT NULL FROM users"))
    assert [(user_id, bool(verified)) for user_id, verified in users] == [("usr_owner", True)]
    memberships = asyncio.run(_rows(db_url, "SELECT id FROM memberships"))
    assert memberships == [("mem_owner",)]
    assert asyncio.run(_rows(db_url, "SELECT id FROM dashboard_sessions")) == []
    assert asyncio.run(_rows(db_url, "SELECT id FROM organizations")) == [("org_a",)]
