"""Bad input gets the contract's error shape and status, and changes nothing."""

from __future__ import annotations

import httpx

from tests.conftest import Org


async def _projects(client: httpx.AsyncClient, org: Org) -> list[dict]:
    return (await client.get("/manage/v1/projects", headers=org.headers)).json()["data"]


async def test_malformed_json_is_400(client: httpx.AsyncClient, org: Org) -> None:
    r = await client.post(
        "/manage/v1/projects",
        content=b'{"name": ',
        headers={**org.headers, "content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json() == {
        "error": {
            "type": "invalid_request_error",
            "code": "invalid_json",
            "message": "The body is not valid JSON.",
        }
    }
    assert await _projects(client, org) == []


async def test_wrong_content_type_is_400(client: httpx.AsyncClient, org: Org) -> None:
    r = await client.post(
        "/manage/v1/projects",
        content=b"name=x",
        headers={**org.headers, "content-type": "text/plain"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_content_type"


async def test_wrong_types_and_unknown_fields_are_422(client: httpx.AsyncClient, org: Org) -> None:
    r = await client.post("/manage/v1/projects", json={"name": 5}, headers=org.headers)
    assert r.status_code == 422 and r.json()["error"]["param"] == "name"
    r = await client.post("/manage/v1/projects", json={"name": "x", "colour": "red"}, headers=org.headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_field"
    r = await client.post("/manage/v1/projects", json={}, headers=org.headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "missing_field"
    r = await client.post("/manage/v1/projects", json=[1, 2], headers=org.headers)
    assert r.status_code == 400
    assert await _projects(client, org) == []


async def test_oversize_body_is_refused(client: httpx.AsyncClient, org: Org) -> None:
    big = b'{"name": "' + b"x" * 2_000_000 + b'"}'
    r = await client.post(
        "/manage/v1/projects",
        content=big,
        headers={**org.headers, "content-type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    assert await _projects(client, org) == []


async def test_missing_or_bad_credentials_are_401(client: httpx.AsyncClient) -> None:
    for headers in [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Bearer mlx_mk_wrong"},
        {"Authorization": "Basic x"},
    ]:
        r = await client.get("/manage/v1/projects", headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["type"] == "authentication_error"


async def test_project_key_is_not_a_management_key(client: httpx.AsyncClient, org: Org) -> None:
    pid = (await client.post("/manage/v1/projects", json={"name": "p"}, headers=org.headers)).json()["data"][
        "id"
    ]
    key = (await client.post("/manage/v1/api-keys", json={"project_id": pid}, headers=org.headers)).json()[
        "data"
    ]["key"]
    r = await client.get("/manage/v1/projects", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 401


async def test_unknown_route_and_method_use_the_error_shape(client: httpx.AsyncClient, org: Org) -> None:
    r = await client.get("/manage/v1/nothing", headers=org.headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await client.put("/manage/v1/projects", headers=org.headers, json={})
    assert r.status_code == 405 and "error" in r.json()


async def test_plans_are_public(client: httpx.AsyncClient) -> None:
    r = await client.get("/manage/v1/plans")
    assert r.status_code == 200
    plans = {p["id"]: p for p in r.json()["data"]}
    assert plans["pro"]["prices"] == {
        "currency": "usd",
        "monthly_cents": 4900,
        "annual_cents": 49000,
        "annual_saving_cents": 9800,
        "custom": False,
    }
    assert plans["enterprise"]["self_serve"] is False
    assert plans["enterprise"]["limits"]["monthly_requests"] is None
