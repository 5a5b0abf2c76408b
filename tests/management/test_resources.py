"""The management API's resources, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx

from modelux_server.services import Services
from tests.conftest import Org, make_org
from tests.support.invitations import join
from tests.support.plans import move_to


async def test_project_crud_and_pagination(client: httpx.AsyncClient, org: Org, rt: Services) -> None:
    await move_to(rt, org.id, "pro")
    ids = []
    for i in range(5):
        r = await client.post("/manage/v1/projects", json={"name": f"p{i}"}, headers=org.headers)
        assert r.status_code == 201, r.text
        ids.append(r.json()["data"]["id"])
    assert all(i.startswith("proj_") for i in ids)
    first = (await client.get("/manage/v1/projects?limit=2", headers=org.headers)).json()
    assert [p["id"] for p in first["data"]] == ids[:2] and first["has_more"] is True
    rest = (
        await client.get(f"/manage/v1/projects?limit=200&cursor={first['next_cursor']}", headers=org.headers)
    ).json()
    assert [p["id"] for p in rest["data"]] == ids[2:] and rest["has_more"] is False
    r = await client.patch(f"/manage/v1/projects/{ids[0]}", json={"description": "d"}, headers=org.headers)
    assert r.json()["data"]["description"] == "d"
    assert (await client.delete(f"/manage/v1/projects/{ids[0]}", headers=org.headers)).status_code == 200
    assert (await client.get(f"/manage/v1/projects/{ids[0]}", headers=org.headers)).status_code == 404
    over = await client.get("/manage/v1/projects?limit=201", headers=org.headers)
    assert over.status_code == 422


async def test_another_tenants_objects_are_not_found(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    other = await make_org(rt, "Globex", "owner@globex.test")
    project = (await client.post("/manage/v1/projects", json={"name": "mine"}, headers=org.headers)).json()
    pid = project["data"]["id"]
    for method, path in [
        ("GET", f"/manage/v1/projects/{pid}"),
        ("PATCH", f"/manage/v1/projects/{pid}"),
        ("DELETE", f"/manage/v1/projects/{pid}"),
    ]:
        r = await client.request(
            method, path, headers=other.headers, json={"name": "x"} if method == "PATCH" else None
        )
        assert r.status_code == 404, (method, r.text)
        assert r.json()["error"]["type"] == "not_found_error"
    r = await client.post("/manage/v1/api-keys", json={"project_id": pid}, headers=other.headers)
    assert r.status_code == 404
    listed = (await client.get("/manage/v1/projects", headers=other.headers)).json()
    assert listed["data"] == []


async def test_secrets_are_shown_once_and_never_again(client: httpx.AsyncClient, org: Org) -> None:
    pid = (await client.post("/manage/v1/projects", json={"name": "p"}, headers=org.headers)).json()["data"][
        "id"
    ]
    created = (
        await client.post("/manage/v1/api-keys", json={"project_id": pid, "name": "k"}, headers=org.headers)
    ).json()["data"]
    assert created["key"].startswith("mlx_sk_")
    assert created["hint"].endswith(created["key"][-4:])
    for r in [
        await client.get(f"/manage/v1/api-keys/{created['id']}", headers=org.headers),
        await client.get("/manage/v1/api-keys", headers=org.headers),
    ]:
        assert created["key"] not in r.text and '"key"' not in r.text

    secret = "sk-live-abcdefghijklmnop1234"
    prov = await client.post(
        "/manage/v1/providers",
        json={"vendor": "openai", "name": "main", "api_key": secret},
        headers=org.headers,
    )
    assert prov.status_code == 201
    assert prov.json()["data"]["hint"] == "sk-...1234"
    for r in [prov, await client.get("/manage/v1/providers", headers=org.headers)]:
        assert secret not in r.text and "api_key" not in r.text

    mk = (await client.post("/manage/v1/management-keys", json={"name": "ci"}, headers=org.headers)).json()
    assert mk["data"]["key"].startswith("mlx_mk_")
    listing = (await client.get("/manage/v1/management-keys", headers=org.headers)).text
    assert mk["data"]["key"] not in listing


async def test_provider_secret_is_encrypted_at_rest(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    from sqlalchemy import select

    from modelux_server.models import ProviderCredential

    secret = "sk-ant-secret-value-9999"
    await client.post(
        "/manage/v1/providers",
        json={"vendor": "anthropic", "name": "a", "api_key": secret},
        headers=org.headers,
    )
    async with rt.db.session() as session:
        row = (await session.execute(select(ProviderCredential))).scalar_one()
    assert secret not in row.secret_encrypted
    assert rt.encryptor.decrypt(row.secret_encrypted) == secret


async def test_limits_give_the_resource_402(client: httpx.AsyncClient, org: Org) -> None:
    r1 = await client.post("/manage/v1/projects", json={"name": "one"}, headers=org.headers)
    r2 = await client.post("/manage/v1/projects", json={"name": "two"}, headers=org.headers)
    assert r1.status_code == 201 and r2.status_code == 402
    err = r2.json()["error"]
    assert err["type"] == "plan_limit_exceeded" and err["code"] == "resource_limit_reached"
    assert err["limit"] == {"name": "projects", "limit": 1, "used": 1}
    assert err["upgrade"] == {
        "plan": "pro",
        "url": "https://modelux.test/settings/billing?plan=pro",
    }
    assert "Retry-After" not in r2.headers

    pid = r1.json()["data"]["id"]
    codes = [
        (await client.post("/manage/v1/api-keys", json={"project_id": pid}, headers=org.headers)).status_code
        for _ in range(4)
    ]
    assert codes == [201, 201, 201, 402]
    provs = [
        (
            await client.post(
                "/manage/v1/providers",
                json={"vendor": "openai", "name": f"p{i}", "api_key": f"sk-{i}xxxxxxxxxx"},
                headers=org.headers,
            )
        ).status_code
        for i in range(3)
    ]
    assert provs == [201, 201, 402]
    # freeing a slot makes room again: the limit is point-in-time
    keys = (await client.get("/manage/v1/api-keys", headers=org.headers)).json()["data"]
    await client.delete(f"/manage/v1/api-keys/{keys[0]['id']}", headers=org.headers)
    again = await client.post("/manage/v1/api-keys", json={"project_id": pid}, headers=org.headers)
    assert again.status_code == 201


async def test_idempotency_key_returns_the_first_answer(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    await move_to(rt, org.id, "pro")
    headers = {**org.headers, "Idempotency-Key": "create-proj-1"}
    first = await client.post("/manage/v1/projects", json={"name": "once"}, headers=headers)
    second = await client.post("/manage/v1/projects", json={"name": "once"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    listed = (await client.get("/manage/v1/projects", headers=org.headers)).json()["data"]
    assert [p["name"] for p in listed] == ["once"]
    clash = await client.post("/manage/v1/projects", json={"name": "other"}, headers=headers)
    assert clash.status_code == 409
    assert clash.json()["error"]["code"] == "idempotency_key_reused"


async def test_member_role_cannot_change_things(client: httpx.AsyncClient, org: Org) -> None:
    mk = (
        await client.post(
            "/manage/v1/management-keys", json={"name": "ro", "role": "member"}, headers=org.headers
        )
    ).json()["data"]
    member = {"Authorization": f"Bearer {mk['key']}"}
    assert (await client.get("/manage/v1/projects", headers=member)).status_code == 200
    r = await client.post("/manage/v1/projects", json={"name": "x"}, headers=member)
    assert r.status_code == 403
    assert r.json()["error"] == {
        "type": "permission_error",
        "code": "role_not_allowed",
        "message": r.json()["error"]["message"],
        "required_role": "admin",
    }
    listed = (await client.get("/manage/v1/projects", headers=org.headers)).json()["data"]
    assert listed == []


async def test_members_roles_and_last_owner(
    client: httpx.AsyncClient, org: Org, app: Any, rt: Services
) -> None:
    added = await client.post(
        "/manage/v1/members", json={"email": "dev@acme.test", "role": "admin"}, headers=org.headers
    )
    assert added.status_code == 201 and added.json()["data"]["role"] == "admin"
    await join(app, rt, "dev@acme.test")
    members = (await client.get("/manage/v1/members", headers=org.headers)).json()["data"]
    assert {(m["email"], m["role"]) for m in members} == {
        ("owner@acme.test", "owner"),
        ("dev@acme.test", "admin"),
    }
    owner = next(m for m in members if m["role"] == "owner")
    r = await client.patch(f"/manage/v1/members/{owner['id']}", json={"role": "member"}, headers=org.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "last_owner"
    dup = await client.post("/manage/v1/members", json={"email": "DEV@acme.test"}, headers=org.headers)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "already_member"


async def test_revoked_management_key_is_refused(client: httpx.AsyncClient, org: Org) -> None:
    mk = (await client.post("/manage/v1/management-keys", json={"name": "tmp"}, headers=org.headers)).json()[
        "data"
    ]
    headers = {"Authorization": f"Bearer {mk['key']}"}
    assert (await client.get("/manage/v1/billing", headers=headers)).status_code == 200
    await client.delete(f"/manage/v1/management-keys/{mk['id']}", headers=org.headers)
    r = await client.get("/manage/v1/billing", headers=headers)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
