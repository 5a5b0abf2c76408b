"""A project API key's optional expiry, on SQLite and PostgreSQL: set on create or update
(in the future, with a zone), shown on the key and in the audit log, enforced by the proxy
even for a key it has cached, and listed as `expired` by the access review."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from modelux_server.billing.operator import create_enterprise_plan
from modelux_server.kit.clock import FrozenClock
from modelux_server.services import Services
from tests.conftest import START, Org

Z = "%Y-%m-%dT%H:%M:%SZ"
IN_AN_HOUR = (START + timedelta(hours=1)).strftime(Z)
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


async def new_project(client: httpx.AsyncClient, org: Org) -> str:
    r = await client.post("/manage/v1/projects", json={"name": "app"}, headers=org.headers)
    assert r.status_code == 201, r.text
    return str(r.json()["data"]["id"])


async def create_key(client: httpx.AsyncClient, org: Org, **fields: Any) -> httpx.Response:
    listed = (await client.get("/manage/v1/projects", headers=org.headers)).json()["data"]
    project_id = listed[0]["id"] if listed else await new_project(client, org)
    return await client.post(
        "/manage/v1/api-keys", json={"project_id": project_id, **fields}, headers=org.headers
    )


async def chat(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {token}"})


async def test_a_key_works_until_its_expiry_then_the_proxy_answers_401_api_key_expired(
    client: httpx.AsyncClient, org: Org, clock: FrozenClock
) -> None:
    r = await create_key(client, org, name="temp", expires_at=IN_AN_HOUR)
    assert r.status_code == 201, r.text
    key = r.json()["data"]
    assert key["expires_at"] == IN_AN_HOUR
    # authenticated (no provider credential to route to: 422), and now in the key cache
    before = await chat(client, key["key"])
    assert before.status_code == 422, before.text
    assert before.json()["error"]["code"] == "no_provider_credential"

    clock.advance(timedelta(hours=1))  # exactly at the expiry; the cache still holds the key
    after = await chat(client, key["key"])
    assert after.status_code == 401
    error = after.json()["error"]
    assert error["code"] == "api_key_expired"
    assert IN_AN_HOUR in error["message"]
    got = await client.get(f"/manage/v1/api-keys/{key['id']}", headers=org.headers)
    assert got.json()["data"]["expires_at"] == IN_AN_HOUR


async def test_an_expiry_in_the_past_or_without_a_zone_is_a_422(client: httpx.AsyncClient, org: Org) -> None:
    cases = {
        START.strftime(Z): "invalid_field",  # now is not in the future
        (START - timedelta(days=1)).strftime(Z): "invalid_field",
        "2030-01-01T00:00:00": "invalid_field",  # naive
        "9999-12-31T23:59:59-23:59": "invalid_field",  # past what a date can hold in UTC
        "tomorrow": "invalid_field",
    }
    for value, code in cases.items():
        r = await create_key(client, org, expires_at=value)
        assert r.status_code == 422, (value, r.text)
        error = r.json()["error"]
        assert (error["code"], error["param"]) == (code, "expires_at"), value
    listed = await client.get("/manage/v1/api-keys", headers=org.headers)
    assert listed.json()["data"] == []


async def test_updating_the_expiry_to_null_removes_it_and_the_key_works_again(
    client: httpx.AsyncClient, org: Org, clock: FrozenClock
) -> None:
    key = (await create_key(client, org, expires_at=IN_AN_HOUR)).json()["data"]
    url = f"/manage/v1/api-keys/{key['id']}"
    past = await client.patch(url, json={"expires_at": START.strftime(Z)}, headers=org.headers)
    assert past.status_code == 422
    assert past.json()["error"]["param"] == "expires_at"
    clock.advance(timedelta(hours=2))
    assert (await chat(client, key["key"])).json()["error"]["code"] == "api_key_expired"

    r = await client.patch(url, json={"expires_at": None}, headers=org.headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["expires_at"] is None
    assert (await chat(client, key["key"])).status_code == 422  # authenticated again

    later = (clock.now() + timedelta(days=30)).strftime(Z)
    r = await client.patch(url, json={"expires_at": later}, headers=org.headers)
    assert r.json()["data"]["expires_at"] == later


async def test_the_audit_log_and_the_access_review_show_the_expiry(
    client: httpx.AsyncClient, org: Org, rt: Services, clock: FrozenClock
) -> None:
    async with rt.db.session() as session:
        await create_enterprise_plan(session, rt, org.id, name="Acme Enterprise", limits={}, features=[])
    expiring = (await create_key(client, org, name="expiring", expires_at=IN_AN_HOUR)).json()["data"]
    forever = (await create_key(client, org, name="forever")).json()["data"]
    later = (START + timedelta(days=1)).strftime(Z)
    r = await client.patch(
        f"/manage/v1/api-keys/{forever['id']}", json={"expires_at": later}, headers=org.headers
    )
    assert r.status_code == 200, r.text

    log = await client.get("/manage/v1/audit-log", headers=org.headers)
    assert log.status_code == 200, log.text
    events = {(e["action"], e["target"]["id"]): e for e in log.json()["data"]}
    assert events[("api_key.created", expiring["id"])]["changes"]["expires_at"] == {
        "from": None,
        "to": IN_AN_HOUR,
    }
    updated = events[("api_key.updated", forever["id"])]
    assert updated["changes"] == {"expires_at": {"from": None, "to": later}}

    clock.advance(timedelta(hours=2))
    review = await client.get("/manage/v1/access-review", headers=org.headers)
    assert review.status_code == 200, review.text
    keys = {k["id"]: k for k in review.json()["data"]["api_keys"]}
    assert (keys[expiring["id"]]["status"], keys[expiring["id"]]["expires_at"]) == ("expired", IN_AN_HOUR)
    assert (keys[forever["id"]]["status"], keys[forever["id"]]["expires_at"]) == ("active", later)
