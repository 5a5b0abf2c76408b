"""`/manage/v1/budgets` on SQLite and PostgreSQL: CRUD, validation, roles, tenants, spend."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from modelux_server.services import Services
from tests.budget.support import key_with_role, period_of, record_spend
from tests.conftest import Org, make_org

URL = "/manage/v1/budgets"
ORG_CAP = {"name": "org cap", "scope": "organization", "amount_usd": 250, "period": "monthly"}


async def _project(client: httpx.AsyncClient, org: Org, name: str = "web") -> str:
    r = await client.post("/manage/v1/projects", json={"name": name}, headers=org.headers)
    assert r.status_code == 201, r.text
    project_id: str = r.json()["data"]["id"]
    return project_id


async def _api_key(client: httpx.AsyncClient, org: Org, project_id: str) -> str:
    r = await client.post("/manage/v1/api-keys", json={"project_id": project_id}, headers=org.headers)
    assert r.status_code == 201, r.text
    key_id: str = r.json()["data"]["id"]
    return key_id


async def _create(client: httpx.AsyncClient, org: Org, **body: Any) -> dict[str, Any]:
    r = await client.post(URL, json={**ORG_CAP, **body}, headers=org.headers)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def test_an_organization_budget_is_created_with_defaults_and_its_current_period(
    client: httpx.AsyncClient, org: Org
) -> None:
    r = await client.post(URL, json=ORG_CAP, headers=org.headers)
    assert r.status_code == 201, r.text
    budget = r.json()["data"]
    assert budget["id"].startswith("bud_") and budget["object"] == "budget"
    assert budget["scope"] == "organization" and budget["scope_id"] == org.id  # filled in
    assert budget["amount_usd"] == 250 and isinstance(budget["amount_usd"], int)
    assert budget["action"] == "block" and budget["thresholds"] == [50, 80, 100]
    # the clock stands at 2026-11-28 12:00 UTC
    assert budget["spend"] == {
        "spend_usd": 0,
        "remaining_usd": 250,
        "used_percent": 0.0,
        "period_start": "2026-11-01T00:00:00Z",
        "period_resets_at": "2026-12-01T00:00:00Z",
    }
    assert (await client.get(f"{URL}/{budget['id']}", headers=org.headers)).json()["data"] == budget


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("daily", "2026-11-28T00:00:00Z", "2026-11-29T00:00:00Z"),
        ("weekly", "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z"),  # ISO weeks start on Monday
        # the billing window renews on the organization's anchor day: created on the 28th
        ("billing", "2026-11-28T00:00:00Z", "2026-12-28T00:00:00Z"),
    ],
)
async def test_each_period_is_reported_in_utc(
    client: httpx.AsyncClient, org: Org, period: str, start: str, end: str
) -> None:
    budget = await _create(client, org, name=period, period=period)
    assert (budget["spend"]["period_start"], budget["spend"]["period_resets_at"]) == (start, end)


async def test_project_and_api_key_budgets_name_a_live_object_of_the_organization(
    client: httpx.AsyncClient, org: Org
) -> None:
    project_id = await _project(client, org)
    key_id = await _api_key(client, org, project_id)
    on_project = await _create(client, org, name="p", scope="project", scope_id=project_id)
    on_key = await _create(client, org, name="k", scope="api_key", scope_id=key_id, action="alert")
    assert (on_project["scope"], on_project["scope_id"]) == ("project", project_id)
    assert (on_key["scope"], on_key["scope_id"], on_key["action"]) == ("api_key", key_id, "alert")

    for scope in ("project", "api_key"):
        missing = await client.post(URL, json={**ORG_CAP, "name": "x", "scope": scope}, headers=org.headers)
        assert missing.status_code == 422
        assert missing.json()["error"]["code"] == "missing_field"
        assert missing.json()["error"]["param"] == "scope_id"
    # a revoked key and a deleted project spend nothing more: not found
    assert (await client.delete(f"/manage/v1/api-keys/{key_id}", headers=org.headers)).status_code == 200
    r = await client.post(
        URL, json={**ORG_CAP, "name": "x", "scope": "api_key", "scope_id": key_id}, headers=org.headers
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "api_key_not_found"
    assert (await client.delete(f"/manage/v1/projects/{project_id}", headers=org.headers)).status_code == 200
    r = await client.post(
        URL, json={**ORG_CAP, "name": "x", "scope": "project", "scope_id": project_id}, headers=org.headers
    )
    assert r.status_code == 404 and r.json()["error"]["param"] == "scope_id"
    # the budgets made before stay, and can still be renamed without naming their scope again
    r = await client.patch(f"{URL}/{on_project['id']}", json={"name": "p2"}, headers=org.headers)
    assert r.status_code == 200 and r.json()["data"]["name"] == "p2"


async def test_crud_pagination_and_the_deleted_answer(client: httpx.AsyncClient, org: Org) -> None:
    ids = [(await _create(client, org, name=f"b{i}"))["id"] for i in range(3)]
    first = (await client.get(f"{URL}?limit=2", headers=org.headers)).json()
    assert [b["id"] for b in first["data"]] == ids[:2] and first["has_more"] is True
    rest = (await client.get(f"{URL}?cursor={first['next_cursor']}", headers=org.headers)).json()
    assert [b["id"] for b in rest["data"]] == ids[2:] and rest["has_more"] is False

    project_id = await _project(client, org)
    r = await client.patch(
        f"{URL}/{ids[0]}",
        json={
            "name": "renamed",
            "amount_usd": 0.000001,
            "period": "daily",
            "action": "alert",
            "thresholds": [90],
            "scope": "project",
            "scope_id": project_id,
        },
        headers=org.headers,
    )
    assert r.status_code == 200, r.text
    changed = r.json()["data"]
    assert changed["name"] == "renamed" and changed["amount_usd"] == 0.000001
    assert (changed["period"], changed["action"], changed["thresholds"]) == ("daily", "alert", [90])
    assert (changed["scope"], changed["scope_id"]) == ("project", project_id)
    # back to the organization: its id is filled in again
    r = await client.patch(f"{URL}/{ids[0]}", json={"scope": "organization"}, headers=org.headers)
    assert (r.json()["data"]["scope"], r.json()["data"]["scope_id"]) == ("organization", org.id)
    # a scope change to a project must name it
    r = await client.patch(f"{URL}/{ids[1]}", json={"scope": "project"}, headers=org.headers)
    assert r.status_code == 422 and r.json()["error"]["param"] == "scope_id"

    deleted = await client.delete(f"{URL}/{ids[0]}", headers=org.headers)
    assert deleted.status_code == 200 and deleted.json()["data"]["deleted"] is True
    assert deleted.json()["data"]["name"] == "renamed"
    for method in ("GET", "PATCH", "DELETE"):
        r = await client.request(
            method, f"{URL}/{ids[0]}", json={"name": "x"} if method == "PATCH" else None, headers=org.headers
        )
        assert r.status_code == 404 and r.json()["error"]["code"] == "budget_not_found", method
    assert [b["id"] for b in (await client.get(URL, headers=org.headers)).json()["data"]] == ids[1:]


async def test_names_are_unique_per_organization(client: httpx.AsyncClient, org: Org, rt: Services) -> None:
    first = await _create(client, org, name="prod")
    again = await client.post(URL, json={**ORG_CAP, "name": "prod"}, headers=org.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "budget_name_taken"
    second = await _create(client, org, name="staging")
    r = await client.patch(f"{URL}/{second['id']}", json={"name": "prod"}, headers=org.headers)
    assert r.status_code == 409
    # renaming to its own name is no conflict; another organization may use the name
    assert (
        await client.patch(f"{URL}/{first['id']}", json={"name": "prod"}, headers=org.headers)
    ).status_code == 200
    other = await make_org(rt, "Globex", "owner@globex.test")
    assert (
        await client.post(URL, json={**ORG_CAP, "name": "prod"}, headers=other.headers)
    ).status_code == 201


BAD_BODIES: list[tuple[dict[str, Any], str, str]] = [
    ({"amount_usd": "250"}, "amount_usd", "invalid_field"),  # a string is not a number
    ({"amount_usd": True}, "amount_usd", "invalid_field"),
    ({"amount_usd": 0}, "amount_usd", "invalid_field"),
    ({"amount_usd": -5}, "amount_usd", "invalid_field"),
    ({"amount_usd": 1_000_000_000.5}, "amount_usd", "invalid_field"),
    ({"amount_usd": 10**30}, "amount_usd", "invalid_field"),
    ({"amount_usd": 0.0000001}, "amount_usd", "invalid_field"),  # finer than a micro-dollar
    ({"amount_usd": 12.3456789}, "amount_usd", "invalid_field"),
    ({"amount_usd": None}, "amount_usd", "null_not_allowed"),
    ({"amount_usd": [1]}, "amount_usd", "invalid_field"),
    ({"name": ""}, "name", "invalid_field"),
    ({"name": "   "}, "name", "invalid_field"),
    ({"name": "x" * 101}, "name", "invalid_field"),
    ({"name": "a\x00b"}, "name", "invalid_characters"),
    ({"scope": "team"}, "scope", "invalid_field"),
    ({"scope_id": "org\x00"}, "scope_id", "invalid_characters"),
    ({"period": "yearly"}, "period", "invalid_field"),
    ({"action": "throttle"}, "action", "invalid_field"),
    ({"thresholds": []}, "thresholds", "invalid_field"),
    ({"thresholds": [80, 50]}, "thresholds", "invalid_field"),
    ({"thresholds": [50, 50]}, "thresholds", "invalid_field"),
    ({"thresholds": [0]}, "thresholds.0", "invalid_field"),
    ({"thresholds": [101]}, "thresholds.0", "invalid_field"),
    ({"thresholds": ["50"]}, "thresholds.0", "invalid_field"),
    ({"thresholds": [50.5]}, "thresholds.0", "invalid_field"),
    ({"thresholds": list(range(1, 12))}, "thresholds", "invalid_field"),
    ({"colour": "red"}, "colour", "unknown_field"),
]


async def test_hostile_and_invalid_bodies_get_a_422_naming_the_field(
    client: httpx.AsyncClient, org: Org
) -> None:
    existing = await _create(client, org, name="existing")
    for change, param, code in BAD_BODIES:
        for method, url, body in (
            ("POST", URL, {**ORG_CAP, "name": "fresh", **change}),
            ("PATCH", f"{URL}/{existing['id']}", change),
        ):
            r = await client.request(method, url, json=body, headers=org.headers)
            assert r.status_code == 422, (method, change, r.text)
            error = r.json()["error"]
            assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error"), (
                method,
                change,
                error,
            )
    # numbers JSON encoders will not write: NaN and infinities, sent as text
    for raw in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):
        text = b'{"name": "n", "scope": "organization", "period": "daily", "amount_usd": ' + raw + b"}"
        r = await client.post(URL, content=text, headers={**org.headers, "content-type": "application/json"})
        assert r.status_code == 422 and r.json()["error"]["param"] == "amount_usd", (raw, r.text)
    assert [b["name"] for b in (await client.get(URL, headers=org.headers)).json()["data"]] == ["existing"]
    assert (await client.get(f"{URL}/{existing['id']}", headers=org.headers)).json()["data"] == existing


async def test_amounts_keep_every_micro_dollar(client: httpx.AsyncClient, org: Org) -> None:
    for i, amount in enumerate((0.000001, 0.1, 12.5, 999_999_999.999999, 1_000_000_000)):
        budget = await _create(client, org, name=f"a{i}", amount_usd=amount)
        assert budget["amount_usd"] == amount and budget["spend"]["remaining_usd"] == amount


async def test_members_read_and_only_owners_and_admins_change(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    budget = await _create(client, org)
    member = await key_with_role(rt, org.id, "member")
    admin = await key_with_role(rt, org.id, "admin")
    assert (await client.get(URL, headers=member)).json()["data"][0]["id"] == budget["id"]
    assert (await client.get(f"{URL}/{budget['id']}", headers=member)).status_code == 200
    for method, url, body in (
        ("POST", URL, {**ORG_CAP, "name": "m"}),
        ("PATCH", f"{URL}/{budget['id']}", {"amount_usd": 1}),
        ("DELETE", f"{URL}/{budget['id']}", None),
    ):
        r = await client.request(method, url, json=body, headers=member)
        assert r.status_code == 403 and r.json()["error"]["code"] == "role_not_allowed", method
    assert (await client.get(f"{URL}/{budget['id']}", headers=member)).json()["data"] == budget
    assert (
        await client.patch(f"{URL}/{budget['id']}", json={"amount_usd": 1}, headers=admin)
    ).status_code == 200
    assert (await client.delete(f"{URL}/{budget['id']}", headers=admin)).status_code == 200


async def test_another_organizations_budgets_and_scopes_are_not_found(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    other = await make_org(rt, "Globex", "owner@globex.test")
    theirs = await _create(client, other, name="theirs")
    their_project = await _project(client, other, "theirs")
    their_key = await _api_key(client, other, their_project)
    for method in ("GET", "PATCH", "DELETE"):
        r = await client.request(
            method,
            f"{URL}/{theirs['id']}",
            json={"amount_usd": 1} if method == "PATCH" else None,
            headers=org.headers,
        )
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error", method
    for scope, scope_id in (("project", their_project), ("api_key", their_key), ("organization", other.id)):
        r = await client.post(
            URL, json={**ORG_CAP, "name": scope, "scope": scope, "scope_id": scope_id}, headers=org.headers
        )
        assert r.status_code == 404 and r.json()["error"]["param"] == "scope_id", (scope, r.text)
    mine = await _create(client, org, name="mine")
    r = await client.patch(
        f"{URL}/{mine['id']}", json={"scope": "project", "scope_id": their_project}, headers=org.headers
    )
    assert r.status_code == 404
    assert (await client.get(URL, headers=org.headers)).json()["data"] == [
        (await client.get(f"{URL}/{mine['id']}", headers=org.headers)).json()["data"]
    ]
    assert (await client.get(f"{URL}/{theirs['id']}", headers=other.headers)).json()["data"] == theirs


async def test_spend_is_the_current_periods_and_a_new_period_starts_from_zero(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    budget = await _create(client, org, amount_usd=40)
    period = await period_of(rt, org.id, "monthly")
    await record_spend(rt, budget["id"], period, 30_500_000)  # $30.50 settled
    spend = (await client.get(f"{URL}/{budget['id']}", headers=org.headers)).json()["data"]["spend"]
    assert spend["spend_usd"] == 30.5 and spend["remaining_usd"] == 9.5 and spend["used_percent"] == 76.25
    # past the cap (an alert budget keeps spending): nothing remains, the percent says how far
    await record_spend(rt, budget["id"], period, 50_000_000)
    listed = (await client.get(URL, headers=org.headers)).json()["data"][0]["spend"]
    assert (listed["spend_usd"], listed["remaining_usd"], listed["used_percent"]) == (50, 0, 125.0)
    # a lower cap applies to what was spent already
    r = await client.patch(f"{URL}/{budget['id']}", json={"amount_usd": 25}, headers=org.headers)
    assert r.json()["data"]["spend"]["used_percent"] == 200.0


async def test_every_change_tells_the_proxy_to_drop_its_budgets_after_the_commit(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    heard: list[dict[str, Any]] = []
    rt.add_invalidator(lambda **what: heard.append(what))
    budget = await _create(client, org)
    await client.patch(f"{URL}/{budget['id']}", json={"amount_usd": 1}, headers=org.headers)
    await client.delete(f"{URL}/{budget['id']}", headers=org.headers)
    assert heard == [{"budgets": True}] * 3
    # a refused change commits nothing, and so drops nothing
    await client.post(URL, json={**ORG_CAP, "amount_usd": -1}, headers=org.headers)
    await client.post(URL, json={**ORG_CAP, "scope": "project", "scope_id": "proj_nope"}, headers=org.headers)
    assert len(heard) == 3


async def test_an_idempotent_retry_creates_one_budget(client: httpx.AsyncClient, org: Org) -> None:
    headers = {**org.headers, "Idempotency-Key": "budget-1"}
    first = await client.post(URL, json=ORG_CAP, headers=headers)
    again = await client.post(URL, json=ORG_CAP, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert len((await client.get(URL, headers=org.headers)).json()["data"]) == 1


async def test_concurrent_creates_with_one_name_make_one_budget(client: httpx.AsyncClient, org: Org) -> None:
    answers = await asyncio.gather(*(client.post(URL, json=ORG_CAP, headers=org.headers) for _ in range(6)))
    assert sorted(r.status_code for r in answers) == [201] + [409] * 5
    assert {r.json()["error"]["code"] for r in answers if r.status_code == 409} == {"budget_name_taken"}
    assert len((await client.get(URL, headers=org.headers)).json()["data"]) == 1


async def test_rules_no_schema_states_are_checked_after_the_credential(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    # valid by the published schema, refused on meaning: the credential is judged first
    meaningless = {**ORG_CAP, "amount_usd": 0.0000001, "thresholds": [80, 50]}
    assert (await client.post(URL, json=meaningless)).status_code == 401
    member = await key_with_role(rt, org.id, "member")
    assert (await client.post(URL, json=meaningless, headers=member)).status_code == 403
    assert (await client.post(URL, json=meaningless, headers=org.headers)).status_code == 422
