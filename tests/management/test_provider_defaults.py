"""A provider credential marked as its vendor's default, on SQLite and PostgreSQL.

The API's rules (the first of a vendor is the default, one default per vendor),
the partial unique index behind them, and migration 0011's backfill.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from modelux_server.kit.db import create_engine
from modelux_server.kit.migrations import alembic_config, upgrade
from modelux_server.models import ProviderCredential
from modelux_server.services import Services
from tests.conftest import START, Org
from tests.support.plans import move_to


async def add(client: httpx.AsyncClient, org: Org, vendor: str, name: str, **extra: Any) -> dict[str, Any]:
    body = {"vendor": vendor, "name": name, "api_key": f"sk-{name}-12345678", **extra}
    r = await client.post("/manage/v1/providers", json=body, headers=org.headers)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def defaults(client: httpx.AsyncClient, org: Org) -> dict[str, bool]:
    listed = (await client.get("/manage/v1/providers", headers=org.headers)).json()["data"]
    return {c["name"]: c["default"] for c in listed}


async def test_the_first_credential_of_a_vendor_is_its_default_and_there_is_one_per_vendor(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    await move_to(rt, org.id, "pro")
    a = await add(client, org, "openai", "a")
    assert a["default"] is True
    assert (await add(client, org, "openai", "b"))["default"] is False
    assert (await add(client, org, "anthropic", "c"))["default"] is True  # per vendor
    d = await add(client, org, "openai", "d", default=True)
    assert await defaults(client, org) == {"a": False, "b": False, "c": True, "d": True}
    # a first credential may be created as no default at all
    assert (await add(client, org, "groq", "e", default=False))["default"] is False

    url = f"/manage/v1/providers/{a['id']}"
    assert (await client.patch(url, json={"default": True}, headers=org.headers)).json()["data"]["default"]
    assert await defaults(client, org) == {"a": True, "b": False, "c": True, "d": False, "e": False}
    assert (await client.get(f"/manage/v1/providers/{d['id']}", headers=org.headers)).json()["data"][
        "default"
    ] is False
    # a rename leaves the flag alone; unsetting leaves the vendor without a default
    await client.patch(url, json={"name": "a2"}, headers=org.headers)
    await client.patch(url, json={"default": False}, headers=org.headers)
    assert await defaults(client, org) == {"a2": False, "b": False, "c": True, "d": False, "e": False}

    for body in ({"default": None}, {"default": "yes"}, {"default": 1}):
        r = await client.patch(url, json=body, headers=org.headers)
        assert r.status_code == 422 and r.json()["error"]["param"] == "default", r.text
    r = await client.post(
        "/manage/v1/providers",
        json={"vendor": "openai", "name": "f", "api_key": "sk-f-12345678", "default": None},
        headers=org.headers,
    )
    assert r.status_code == 422 and r.json()["error"]["param"] == "default"


async def test_the_database_holds_one_live_default_per_organization_and_vendor(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    first = await add(client, org, "openai", "a")

    def row(suffix: str, vendor: str, **extra: Any) -> ProviderCredential:
        return ProviderCredential(
            id=f"prov_{suffix}",
            org_id=org.id,
            vendor=vendor,
            name=suffix,
            secret_encrypted="x",
            hint="sk-...x",
            created_at=START,
            is_default=True,
            **extra,
        )

    with pytest.raises(IntegrityError):
        async with rt.db.session() as session:
            session.add(row("second", "openai"))
    # a deleted default and another vendor's default are no conflict
    async with rt.db.session() as session:
        session.add(row("gone", "openai", deleted_at=START + timedelta(days=1)))
        session.add(row("other", "anthropic"))
    assert await defaults(client, org) == {"a": True, "other": True}
    assert first["default"] is True


ROWS = [
    "INSERT INTO organizations (id, name, created_at) VALUES ('org_a', 'Acme', :at)",
    "INSERT INTO organizations (id, name, created_at) VALUES ('org_b', 'Globex', :at)",
]
# (id, org, vendor, deleted): the oldest live one per organization and vendor becomes the default
CREDENTIALS = [
    ("prov_1", "org_a", "openai", True),
    ("prov_2", "org_a", "openai", False),
    ("prov_3", "org_a", "openai", False),
    ("prov_4", "org_a", "anthropic", False),
    ("prov_5", "org_b", "openai", False),
    ("prov_6", "org_b", "groq", True),
]


async def _execute(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in ROWS:
                await conn.execute(text(statement), {"at": START})
            for credential_id, org_id, vendor, deleted in CREDENTIALS:
                await conn.execute(
                    text(
                        "INSERT INTO provider_credentials (id, org_id, vendor, name, secret_encrypted, hint,"
                        " deleted_at, created_at) VALUES (:id, :org, :vendor, :id, 'x', 'x', :deleted, :at)"
                    ),
                    {
                        "id": credential_id,
                        "org": org_id,
                        "vendor": vendor,
                        "deleted": START if deleted else None,
                        "at": START,
                    },
                )
    finally:
        await engine.dispose()


async def _defaults(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            query = "SELECT id FROM provider_credentials WHERE is_default ORDER BY id"
            rows = await conn.execute(text(query))
            return [r[0] for r in rows]
    finally:
        await engine.dispose()


def test_upgrading_to_0011_makes_the_oldest_live_credential_of_each_vendor_its_default(db_url: str) -> None:
    command.downgrade(alembic_config(db_url), "0010")
    try:
        asyncio.run(_execute(db_url))
    finally:
        # the PostgreSQL database is shared by the tests of this process: back to head whatever happens
        upgrade(db_url)
    assert asyncio.run(_defaults(db_url)) == ["prov_2", "prov_4", "prov_5"]
