"""What the schemathesis run (tests/fuzz) found, each pinned by the input that showed it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from modelux_server.kit.schemas import NO_NUL, NO_NUL_NOT_BLANK
from tests.conftest import Org


async def test_a_405_allows_every_method_the_path_serves(client: httpx.AsyncClient, org: Org) -> None:
    # found: OPTIONS /manage/v1/management-keys/0 answered `Allow: GET` (DELETE missing)
    r = await client.request("OPTIONS", "/manage/v1/management-keys/0", headers=org.headers)
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert r.headers["allow"] == "DELETE, GET"
    r = await client.put("/manage/v1/projects/proj_x", json={}, headers=org.headers)
    assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET, PATCH"


@pytest.mark.parametrize("email", ["{n~pnfgufi@70patix9.dev*", "a@b..c", "a@-b.c", "a@b_c.d", "a@localhost"])
async def test_an_invitation_to_an_undeliverable_domain_is_refused(
    client: httpx.AsyncClient, org: Org, email: str
) -> None:
    # found: {"email": "{n~pnfgufi@70patix9.dev*"} was invited (201)
    r = await client.post("/manage/v1/members", json={"email": email}, headers=org.headers)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_email"
    assert (await client.get("/manage/v1/invitations", headers=org.headers)).json()["data"] == []


async def test_an_internationalised_domain_is_still_invited(client: httpx.AsyncClient, org: Org) -> None:
    r = await client.post("/manage/v1/members", json={"email": "jo@münchen.de"}, headers=org.headers)
    assert r.status_code == 201, r.text


async def test_a_whole_number_written_with_a_fraction_is_a_whole_number(
    client: httpx.AsyncClient, org: Org
) -> None:
    # found: {"rate_limit_per_minute": 1096.0} was refused though the schema says integer
    project = (await client.post("/manage/v1/projects", json={"name": "p"}, headers=org.headers)).json()
    body = {"project_id": project["data"]["id"], "rate_limit_per_minute": 1096.0}
    r = await client.post("/manage/v1/api-keys", json=body, headers=org.headers)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["rate_limit_per_minute"] == 1096
    for bad in (1096.5, "1096", True):
        r = await client.post(
            "/manage/v1/api-keys", json={**body, "rate_limit_per_minute": bad}, headers=org.headers
        )
        assert r.status_code == 422 and r.json()["error"]["param"] == "rate_limit_per_minute", bad


async def test_the_schema_admits_null_and_nul_only_where_the_server_does(
    client: httpx.AsyncClient, org: Org
) -> None:
    # found: PATCH /projects/{id} {"name": null} was valid by the schema and refused (422)
    schemas: dict[str, Any] = (await client.get("/openapi.json")).json()["components"]["schemas"]
    update = schemas["ProjectUpdate"]["properties"]
    assert update["name"]["type"] == "string" and "anyOf" not in update["name"]
    assert {"type": "null"} in update["description"]["anyOf"]  # listed in `nullable`: null clears it
    # NUL refused everywhere, and a name that trims to nothing
    assert update["name"]["pattern"] == NO_NUL_NOT_BLANK
    assert update["description"]["anyOf"][0]["pattern"] == NO_NUL
    r = await client.patch("/manage/v1/projects/proj_x", json={"name": None}, headers=org.headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "null_not_allowed"
