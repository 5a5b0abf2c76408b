"""A routing config may only name the organization's own live provider credentials."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from modelux_server.models import RoutingConfig, RoutingConfigVersion
from modelux_server.services import Services
from tests.conftest import Org, make_org
from tests.support.plans import move_to


async def _provider(client: httpx.AsyncClient, org: Org, name: str) -> str:
    body = {"vendor": "openai", "name": name, "api_key": "sk-test-0000"}
    r = await client.post("/manage/v1/providers", json=body, headers=org.headers)
    assert r.status_code == 201, r.text
    return str(r.json()["data"]["id"])


async def _rows(rt: Services) -> tuple[int, int]:
    async with rt.db.session() as session:
        configs = (await session.execute(select(func.count()).select_from(RoutingConfig))).scalar_one()
        versions = (
            await session.execute(select(func.count()).select_from(RoutingConfigVersion))
        ).scalar_one()
    return int(configs), int(versions)


def _unknown(r: httpx.Response, param: str, provider_id: str) -> None:
    assert r.status_code == 422, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "unknown_provider"
    assert error["param"] == param and provider_id in error["message"]


async def test_another_organizations_provider_id_is_refused_at_save(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    other = await make_org(rt, name="Other", email="owner@other.test")
    theirs = await _provider(client, other, "theirs")
    mine = await _provider(client, org, "mine")
    gone = await _provider(client, org, "gone")
    await client.delete(f"/manage/v1/providers/{gone}", headers=org.headers)
    await move_to(rt, org.id, "pro")  # ensembles
    project = (await client.post("/manage/v1/projects", json={"name": "app"}, headers=org.headers)).json()
    base = {"project_id": project["data"]["id"]}
    before = await _rows(rt)

    async def create(slug: str, fields: dict[str, Any]) -> httpx.Response:
        return await client.post(
            "/manage/v1/routing-configs", json={**base, "slug": slug, **fields}, headers=org.headers
        )

    for bad in (theirs, gone, "prov_made_up"):
        _unknown(
            await create("one", {"strategy": "single", "model": "openai/gpt-4o", "provider_id": bad}),
            "provider_id",
            bad,
        )
        targets = [
            {"model": "openai/gpt-4o", "provider_id": mine},
            {"model": "openai/gpt-4o", "provider_id": bad},
        ]
        _unknown(
            await create("two", {"strategy": "fallback", "targets": targets}), "targets[1].provider_id", bad
        )
        members = [{"model": "openai/a", "provider_id": bad}, {"model": "openai/b"}]
        _unknown(
            await create("three", {"strategy": "ensemble", "members": members}), "members[0].provider_id", bad
        )
    assert await _rows(rt) == before

    saved = await create("ok", {"strategy": "single", "model": "openai/gpt-4o", "provider_id": mine})
    assert saved.status_code == 201, saved.text
    url = f"/manage/v1/routing-configs/{saved.json()['data']['id']}"
    moved = await client.patch(
        url, json={"model": "openai/gpt-4o", "provider_id": theirs}, headers=org.headers
    )
    _unknown(moved, "provider_id", theirs)

    # a version naming a credential deleted since cannot be rolled back to
    second = await client.patch(url, json={"model": "openai/gpt-4o"}, headers=org.headers)
    assert second.status_code == 200, second.text
    await client.delete(f"/manage/v1/providers/{mine}", headers=org.headers)
    _unknown(
        await client.post(f"{url}/rollback", json={"version": 1}, headers=org.headers), "provider_id", mine
    )
    assert (await client.get(url, headers=org.headers)).json()["data"]["version"] == 2
