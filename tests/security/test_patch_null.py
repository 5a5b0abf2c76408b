"""PATCH with null: a nullable field is cleared, any other answers 422 `null_not_allowed`.

The nullable fields are the resource's own: a project's `description` and a
provider's `base_url` (null goes back to the vendor's endpoint). Names, roles,
secrets and strategies cannot be null.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from modelux_server.services import Services
from tests.conftest import Org
from tests.support.plans import move_to


@pytest.fixture(autouse=True)
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.WARNING)
    yield
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def _create(client: httpx.AsyncClient, org: Org, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(f"/manage/v1{path}", json=body, headers=org.headers)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def _read(client: httpx.AsyncClient, org: Org, path: str) -> dict[str, Any]:
    r = await client.get(f"/manage/v1{path}", headers=org.headers)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def _null_is_refused(client: httpx.AsyncClient, org: Org, path: str, field: str) -> None:
    before = await _read(client, org, path)
    r = await client.patch(f"/manage/v1{path}", json={field: None}, headers=org.headers)
    assert r.status_code == 422, r.text
    assert r.json() == {
        "error": {
            "type": "invalid_request_error",
            "code": "null_not_allowed",
            "message": f"{field}: must not be null",
            "param": field,
        }
    }
    assert await _read(client, org, path) == before


@pytest.fixture
async def project(client: httpx.AsyncClient, org: Org, rt: Services) -> dict[str, Any]:
    await move_to(rt, org.id, "team")
    return await _create(client, org, "/projects", {"name": "p", "description": "about p"})


async def test_project_name_cannot_be_null_and_description_is_cleared(
    client: httpx.AsyncClient, org: Org, project: dict[str, Any]
) -> None:
    path = f"/projects/{project['id']}"
    await _null_is_refused(client, org, path, "name")

    r = await client.patch(f"/manage/v1{path}", json={"description": None}, headers=org.headers)

    assert r.status_code == 200
    assert (await _read(client, org, path))["description"] is None
    assert (await _read(client, org, path))["name"] == "p"


async def test_api_key_name_cannot_be_null(
    client: httpx.AsyncClient, org: Org, project: dict[str, Any]
) -> None:
    key = await _create(client, org, "/api-keys", {"project_id": project["id"], "name": "ci"})
    await _null_is_refused(client, org, f"/api-keys/{key['id']}", "name")


async def test_provider_name_and_secret_cannot_be_null(
    client: httpx.AsyncClient, org: Org, project: dict[str, Any]
) -> None:
    provider = await _create(
        client, org, "/providers", {"vendor": "openai", "name": "o", "api_key": "sk-1234567890"}
    )
    path = f"/providers/{provider['id']}"
    await _null_is_refused(client, org, path, "name")
    await _null_is_refused(client, org, path, "api_key")
    assert (await _read(client, org, path))["name"] == "o"  # never the string "None"


async def test_provider_base_url_null_goes_back_to_the_vendor_default(
    client: httpx.AsyncClient, org: Org, project: dict[str, Any]
) -> None:
    provider = await _create(
        client,
        org,
        "/providers",
        {"vendor": "openai", "name": "o", "api_key": "sk-1234567890", "base_url": "https://8.8.8.8/v1"},
    )
    path = f"/providers/{provider['id']}"
    assert provider["base_url"] == "https://8.8.8.8/v1"

    # a new endpoint needs the secret again (issue item 3), the vendor's default too
    r = await client.patch(
        f"/manage/v1{path}", json={"base_url": None, "api_key": "sk-0987654321"}, headers=org.headers
    )

    assert r.status_code == 200, r.text
    assert (await _read(client, org, path))["base_url"] is None


async def test_member_role_cannot_be_null(client: httpx.AsyncClient, org: Org) -> None:
    members = (await client.get("/manage/v1/members", headers=org.headers)).json()["data"]
    await _null_is_refused(client, org, f"/members/{members[0]['id']}", "role")


async def test_routing_config_strategy_cannot_be_null(
    client: httpx.AsyncClient, org: Org, project: dict[str, Any]
) -> None:
    config = await _create(
        client,
        org,
        "/routing-configs",
        {"project_id": project["id"], "slug": "main", "strategy": "single", "model": "openai/gpt-4o"},
    )
    await _null_is_refused(client, org, f"/routing-configs/{config['id']}", "strategy")
