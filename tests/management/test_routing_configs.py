"""Routing configs: every strategy stored and validated; features gated; downgrades keep configs."""

from __future__ import annotations

import httpx
import pytest

from modelux_server.services import Services
from tests.conftest import Org
from tests.support.plans import move_to

ENSEMBLE = {
    "strategy": "ensemble",
    "members": [
        {"model": "openai/gpt-4o-mini"},
        {"model": "anthropic/claude-3-5-haiku", "weight": 2},
    ],
    "aggregation": "majority_vote",
}
RULES = {
    "strategy": "custom_rules",
    "rules": [{"if": 'tags.team == "search"', "then": "@cheap"}],
    "else": "openai/gpt-4o",
}


@pytest.fixture
async def project(client: httpx.AsyncClient, org: Org) -> str:
    r = await client.post("/manage/v1/projects", json={"name": "app"}, headers=org.headers)
    return str(r.json()["data"]["id"])


async def _create(client: httpx.AsyncClient, org: Org, project: str, slug: str, body: dict) -> httpx.Response:
    return await client.post(
        "/manage/v1/routing-configs",
        json={"project_id": project, "slug": slug, **body},
        headers=org.headers,
    )


async def test_single_and_fallback_work_on_free(client: httpx.AsyncClient, org: Org, project: str) -> None:
    r = await _create(client, org, project, "cheap", {"strategy": "single", "model": "openai/gpt-4o-mini"})
    assert r.status_code == 201, r.text
    body = r.json()["data"]
    assert body["id"].startswith("rc_") and body["version"] == 1 and body["active"] is True
    r = await _create(
        client,
        org,
        project,
        "safe",
        {
            "strategy": "fallback",
            "targets": [
                {"model": "openai/gpt-4o", "timeout_ms": 5000},
                {"model": "anthropic/claude-3-5-sonnet"},
            ],
        },
    )
    assert r.status_code == 201, r.text


async def test_gated_strategies_get_the_feature_402(
    client: httpx.AsyncClient, org: Org, project: str
) -> None:
    r = await _create(client, org, project, "vote", ENSEMBLE)
    assert r.status_code == 402
    err = r.json()["error"]
    assert (err["type"], err["feature"], err["plan"], err["upgrade"]["plan"]) == (
        "feature_not_in_plan",
        "ensembles",
        "free",
        "pro",
    )
    await _create(client, org, project, "cheap", {"strategy": "single", "model": "openai/gpt-4o-mini"})
    r = await _create(client, org, project, "rules", RULES)
    assert r.status_code == 402 and r.json()["error"]["upgrade"]["plan"] == "team"


async def test_validation_errors_are_422(
    client: httpx.AsyncClient, org: Org, project: str, rt: Services
) -> None:
    await move_to(rt, org.id, "team")
    bad = [
        {"strategy": "teleport"},
        {"strategy": "single"},
        {"strategy": "single", "model": "x", "extra": 1},
        {"strategy": "ensemble", "members": [{"model": "a/b"}]},
        {"strategy": "fallback", "targets": []},
        {
            "strategy": "custom_rules",
            "rules": [{"if": "tags.team ==", "then": "a/b"}],
            "else": "a/b",
        },
        {"strategy": "custom_rules", "rules": [{"if": "true", "then": "nope"}], "else": "a/b"},
    ]
    for body in bad:
        r = await _create(client, org, project, "x", body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["type"] == "invalid_request_error"
    r = await _create(client, org, project, "x", bad[5])
    assert r.json()["error"]["position"] == len("tags.team ==")


async def test_rule_loops_are_refused(
    client: httpx.AsyncClient, org: Org, project: str, rt: Services
) -> None:
    await move_to(rt, org.id, "team")
    a = {
        "strategy": "custom_rules",
        "rules": [{"if": "true", "then": "@b"}],
        "else": "openai/gpt-4o",
    }
    b = {"strategy": "single", "model": "openai/gpt-4o"}
    assert (await _create(client, org, project, "b", b)).status_code == 201
    assert (await _create(client, org, project, "a", a)).status_code == 201
    b_id = (await client.get("/manage/v1/routing-configs", headers=org.headers)).json()["data"][0]["id"]
    loop = {
        "strategy": "custom_rules",
        "rules": [{"if": "true", "then": "@a"}],
        "else": "openai/gpt-4o",
    }
    r = await client.patch(f"/manage/v1/routing-configs/{b_id}", json=loop, headers=org.headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "routing_loop"


async def test_versions_and_rollback(client: httpx.AsyncClient, org: Org, project: str) -> None:
    rc = (await _create(client, org, project, "m", {"strategy": "single", "model": "openai/gpt-4o"})).json()[
        "data"
    ]
    r = await client.patch(
        f"/manage/v1/routing-configs/{rc['id']}",
        json={"model": "openai/gpt-4.1"},
        headers=org.headers,
    )
    assert r.json()["data"]["version"] == 2 and r.json()["data"]["model"] == "openai/gpt-4.1"
    versions = (
        await client.get(f"/manage/v1/routing-configs/{rc['id']}/versions", headers=org.headers)
    ).json()
    assert [v["version"] for v in versions["data"]] == [2, 1]
    r = await client.post(
        f"/manage/v1/routing-configs/{rc['id']}/rollback", json={"version": 1}, headers=org.headers
    )
    assert r.json()["data"]["version"] == 3 and r.json()["data"]["model"] == "openai/gpt-4o"


async def test_downgrade_keeps_configs_inactive_and_reupgrade_restores(
    client: httpx.AsyncClient, org: Org, project: str, rt: Services
) -> None:
    await move_to(rt, org.id, "pro")
    for i in range(3):
        await client.post("/manage/v1/projects", json={"name": f"extra{i}"}, headers=org.headers)
    rc = (await _create(client, org, project, "vote", ENSEMBLE)).json()["data"]
    assert rc["active"] is True

    await move_to(rt, org.id, "free")
    got = (await client.get(f"/manage/v1/routing-configs/{rc['id']}", headers=org.headers)).json()["data"]
    assert got["active"] is False and "ensembles" in got["inactive_reason"]
    assert got["members"] == rc["members"]
    billing = (await client.get("/manage/v1/billing", headers=org.headers)).json()["data"]
    assert billing["plan"]["id"] == "free" and billing["features"]["ensembles"] is False
    assert [d["id"] for d in billing["dormant"]] == [rc["id"]]
    # resources above the new limit stay, only new ones are refused
    assert billing["meters"]["projects"] == {
        "limit": 1,
        "used": 4,
        "percent": 400.0,
        "unlimited": False,
    }
    listed = (await client.get("/manage/v1/projects", headers=org.headers)).json()["data"]
    assert len(listed) == 4
    assert (
        await client.post("/manage/v1/projects", json={"name": "no"}, headers=org.headers)
    ).status_code == 402
    r = await client.patch(
        f"/manage/v1/routing-configs/{rc['id']}",
        json={"aggregation": "first_valid", "members": rc["members"]},
        headers=org.headers,
    )
    assert r.status_code == 402

    await move_to(rt, org.id, "pro")
    got = (await client.get(f"/manage/v1/routing-configs/{rc['id']}", headers=org.headers)).json()["data"]
    assert got["active"] is True and got["inactive_reason"] is None and got["version"] == 1
    billing = (await client.get("/manage/v1/billing", headers=org.headers)).json()["data"]
    assert billing["dormant"] == []
