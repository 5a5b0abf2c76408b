"""Idempotency records: per credential, 24 hours, never a secret, never a truncated key."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import text

from modelux_server.kit.clock import FrozenClock
from modelux_server.services import Services
from tests.conftest import Org
from tests.support.plans import move_to


async def _stored_bodies(rt: Services) -> list[str]:
    async with rt.db.session() as session:
        rows = (await session.execute(text("SELECT response_body FROM idempotency_keys"))).scalars()
        return [row if isinstance(row, str) else json.dumps(row) for row in rows]


async def _row_count(rt: Services) -> int:
    async with rt.db.session() as session:
        return int((await session.execute(text("SELECT count(*) FROM idempotency_keys"))).scalar_one())


async def _project(client: httpx.AsyncClient, org: Org) -> str:
    r = await client.post("/manage/v1/projects", json={"name": "p"}, headers=org.headers)
    assert r.status_code == 201
    project_id: str = r.json()["data"]["id"]
    return project_id


async def _key(client: httpx.AsyncClient, org: Org, role: str) -> dict[str, str]:
    r = await client.post(
        "/manage/v1/management-keys", json={"name": role, "role": role}, headers=org.headers
    )
    assert r.status_code == 201
    return {"Authorization": f"Bearer {r.json()['data']['key']}"}


async def _projects(client: httpx.AsyncClient, org: Org) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = (await client.get("/manage/v1/projects", headers=org.headers)).json()["data"]
    return data


async def test_replayed_api_key_creation_answers_without_the_secret(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    project_id = await _project(client, org)
    headers = {**org.headers, "Idempotency-Key": "new-api-key"}
    body = {"project_id": project_id, "name": "ci"}

    first = await client.post("/manage/v1/api-keys", json=body, headers=headers)
    again = await client.post("/manage/v1/api-keys", json=body, headers=headers)

    assert first.status_code == again.status_code == 201
    created = first.json()["data"]
    assert created["key"].startswith("mlx_sk_") and "key_shown_once" not in created
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["data"] == {**created, "key": None, "key_shown_once": True}
    stored = await _stored_bodies(rt)
    assert len(stored) == 1
    assert created["key"] not in stored[0]
    keys = (await client.get("/manage/v1/api-keys", headers=org.headers)).json()["data"]
    assert [k["id"] for k in keys] == [created["id"]]


async def test_replayed_management_key_creation_answers_without_the_secret(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    headers = {**org.headers, "Idempotency-Key": "new-mk"}
    body = {"name": "deploy", "role": "member"}

    first = await client.post("/manage/v1/management-keys", json=body, headers=headers)
    again = await client.post("/manage/v1/management-keys", json=body, headers=headers)

    created = first.json()["data"]
    assert created["key"].startswith("mlx_mk_")
    assert again.status_code == 201
    assert again.json()["data"] == {**created, "key": None, "key_shown_once": True}
    assert all(created["key"] not in row for row in await _stored_bodies(rt))


async def test_another_credential_never_sees_the_owners_answer(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    await move_to(rt, org.id, "pro")
    admin = await _key(client, org, "admin")
    owner_call = {"name": "second owner", "role": "owner"}

    minted = await client.post(
        "/manage/v1/management-keys", json=owner_call, headers={**org.headers, "Idempotency-Key": "k-1"}
    )
    assert minted.status_code == 201
    # the same call and key from an admin: judged as the admin's own request
    stolen = await client.post(
        "/manage/v1/management-keys", json=owner_call, headers={**admin, "Idempotency-Key": "k-1"}
    )
    assert stolen.status_code == 403
    assert "Idempotent-Replayed" not in stolen.headers
    assert minted.json()["data"]["id"] not in stolen.text and minted.json()["data"]["key"] not in stolen.text

    # a call the admin may make runs afresh under its own scope
    mine = await client.post(
        "/manage/v1/projects", json={"name": "p"}, headers={**admin, "Idempotency-Key": "p"}
    )
    theirs = await client.post(
        "/manage/v1/projects", json={"name": "p"}, headers={**org.headers, "Idempotency-Key": "p"}
    )
    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert mine.json()["data"]["id"] != theirs.json()["data"]["id"]
    assert len(await _projects(client, org)) == 2


async def test_a_record_expires_after_24_hours(
    client: httpx.AsyncClient, org: Org, rt: Services, clock: FrozenClock
) -> None:
    await move_to(rt, org.id, "pro")
    headers = {**org.headers, "Idempotency-Key": "daily"}
    first = await client.post("/manage/v1/projects", json={"name": "p"}, headers=headers)
    clock.advance(timedelta(hours=23, minutes=59))
    within = await client.post("/manage/v1/projects", json={"name": "p"}, headers=headers)
    assert within.headers.get("Idempotent-Replayed") == "true"
    assert within.json() == first.json()

    clock.advance(timedelta(minutes=1))
    after = await client.post("/manage/v1/projects", json={"name": "p"}, headers=headers)

    assert after.status_code == 201 and "Idempotent-Replayed" not in after.headers
    assert after.json()["data"]["id"] != first.json()["data"]["id"]
    assert len(await _projects(client, org)) == 2
    assert await _row_count(rt) == 1  # the expired record was replaced, not kept beside


async def test_expired_records_of_other_credentials_are_purged(
    client: httpx.AsyncClient, org: Org, rt: Services, clock: FrozenClock
) -> None:
    await move_to(rt, org.id, "pro")
    admin = await _key(client, org, "admin")
    for n in range(3):
        r = await client.post(
            "/manage/v1/projects", json={"name": f"old {n}"}, headers={**admin, "Idempotency-Key": f"old-{n}"}
        )
        assert r.status_code == 201
    assert await _row_count(rt) == 3
    clock.advance(timedelta(hours=25))

    r = await client.post(
        "/manage/v1/projects", json={"name": "new"}, headers={**org.headers, "Idempotency-Key": "n"}
    )

    assert r.status_code == 201
    assert await _row_count(rt) == 1


async def test_a_key_longer_than_the_column_is_refused_not_truncated(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    await move_to(rt, org.id, "pro")
    long_key = "k" * 256
    r = await client.post(
        "/manage/v1/projects", json={"name": "p"}, headers={**org.headers, "Idempotency-Key": long_key}
    )
    assert r.status_code == 422
    assert r.json() == {
        "error": {
            "type": "invalid_request_error",
            "code": "idempotency_key_too_long",
            "message": "Idempotency-Key must be at most 255 characters.",
            "param": "Idempotency-Key",
        }
    }
    assert await _projects(client, org) == []
    assert await _row_count(rt) == 0

    # the longest key that fits is kept whole: one differing only in its last character is another key
    fits = "k" * 255
    first = await client.post(
        "/manage/v1/projects", json={"name": "p"}, headers={**org.headers, "Idempotency-Key": fits}
    )
    other = await client.post(
        "/manage/v1/projects", json={"name": "q"}, headers={**org.headers, "Idempotency-Key": fits[:-1] + "j"}
    )
    assert first.status_code == other.status_code == 201
    assert len(await _projects(client, org)) == 2


async def test_a_key_with_control_characters_is_refused(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    for bad in ("a\x00b", "a\x01b", "a\x7fb"):
        r = await client.post(
            "/manage/v1/projects",
            json={"name": "p"},
            headers=[*org.headers.items(), ("Idempotency-Key", bad)],
        )
        assert r.status_code == 422, bad
        assert r.json()["error"]["code"] == "invalid_idempotency_key"
    assert await _projects(client, org) == []
    assert await _row_count(rt) == 0
