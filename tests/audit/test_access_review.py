"""The access review on SQLite and PostgreSQL: one document matching the organization's state
(members who joined, never logged in or are only invited; live and revoked keys with their
creators and last use), as JSON and CSV, recorded in the audit log, Enterprise and admins only."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from modelux_server.billing.operator import create_enterprise_plan
from modelux_server.kit.clock import FrozenClock
from modelux_server.management_key.service import issue_management_key
from modelux_server.models import AuditEvent, User
from modelux_server.services import Services
from tests.conftest import START, Org
from tests.dashboard.forms import browser, log_in
from tests.support.invitations import join
from tests.support.plans import move_to

URL = "/manage/v1/access-review"
Z = "%Y-%m-%dT%H:%M:%SZ"


async def enterprise(rt: Services, org: Org) -> None:
    async with rt.db.session() as session:
        await create_enterprise_plan(session, rt, org.id, name="Acme Enterprise", limits={}, features=[])


async def owner_id(rt: Services, org: Org) -> str:
    async with rt.db.session() as session:
        found = await session.scalar(select(User.id).where(User.email == org.owner_email))
    return str(found)


class World:
    """An organization with a bit of everything an access review must show."""

    def __init__(self, app: Any, client: httpx.AsyncClient, org: Org, rt: Services, clock: FrozenClock):
        self.app, self.client, self.org, self.rt, self.clock = app, client, org, rt, clock

    async def call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        r = await self.client.request(method, f"/manage/v1{path}", headers=self.org.headers, **kw)
        assert r.status_code in (200, 201), r.text
        body: dict[str, Any] = r.json()
        return body

    async def build(self) -> None:
        await enterprise(self.rt, self.org)
        self.bootstrap = (await self.call("GET", "/management-keys"))["data"][0]["id"]
        # dev is invited by the bootstrap key, joins (a login) and logs in again an hour later
        await self.call("POST", "/members", json={"email": "dev@acme.test", "role": "admin"})
        await join(self.app, self.rt, "dev@acme.test")
        self.clock.advance(timedelta(hours=1))
        async with browser(self.app) as person:
            assert (await log_in(person, "dev@acme.test")).status_code == 303
        # invited, never accepted
        await self.call("POST", "/members", json={"email": "new@acme.test", "role": "member"})
        # a management key made with the bootstrap key, then revoked
        self.ci = (await self.call("POST", "/management-keys", json={"name": "ci", "role": "member"}))["data"]
        self.clock.advance(timedelta(minutes=5))
        await self.call("DELETE", f"/management-keys/{self.ci['id']}")
        # a project with a key in use and a revoked one
        self.project = (await self.call("POST", "/projects", json={"name": "app"}))["data"]["id"]
        made = {"project_id": self.project}
        self.live = (await self.call("POST", "/api-keys", json={**made, "name": "live"}))["data"]
        self.old = (await self.call("POST", "/api-keys", json={**made, "name": "old"}))["data"]
        await self.call("DELETE", f"/api-keys/{self.old['id']}")
        # the proxy authenticates the live key (no credential to route to: 422, but used)
        self.clock.advance(timedelta(minutes=5))
        self.used_at = self.clock.now()
        r = await self.client.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {self.live['key']}"},
        )
        assert r.status_code == 422, r.text
        assert self.rt.last_used is not None
        await self.rt.last_used.flush()
        self.clock.advance(timedelta(minutes=5))


@pytest.fixture
async def world(app: Any, client: httpx.AsyncClient, org: Org, rt: Services, clock: FrozenClock) -> World:
    made = World(app, client, org, rt, clock)
    await made.build()
    return made


async def test_the_review_matches_the_organizations_state(world: World) -> None:
    w = world
    review = (await w.call("GET", "/access-review"))["data"]
    at = lambda delta: (START + delta).strftime(Z)  # noqa: E731
    bootstrap = {"type": "management_key", "id": w.bootstrap, "label": "bootstrap"}
    assert review["object"] == "access_review"
    assert review["organization"] == {"id": w.org.id, "name": "Acme"}
    assert review["generated_at"] == w.clock.now().strftime(Z) and review["generated_by"] == bootstrap

    members = {m["email"]: m for m in review["members"]}
    assert list(members) == ["owner@acme.test", "dev@acme.test", "new@acme.test"]
    owner = members["owner@acme.test"]
    # the owner made the organization, has no password yet and never logged in
    assert (owner["role"], owner["status"], owner["login_method"]) == ("owner", "active", "none")
    assert owner["last_login_at"] is None and owner["invited_by"] is None
    assert owner["scim_managed"] is False and owner["created_at"] == at(timedelta(0))
    dev = members["dev@acme.test"]
    assert (dev["role"], dev["status"], dev["login_method"]) == ("admin", "active", "password")
    assert dev["last_login_at"] == at(timedelta(hours=1)) and dev["invited_by"] == bootstrap
    invited = members["new@acme.test"]
    assert (invited["role"], invited["status"], invited["login_method"]) == ("member", "invited", None)
    assert invited["id"].startswith("inv_") and invited["user_id"] is None
    assert invited["last_login_at"] is None and invited["invited_by"] == bootstrap
    assert invited["invitation_expires_at"] == at(timedelta(days=7, hours=1))

    keys = {k["name"]: k for k in review["management_keys"]}
    assert list(keys) == ["bootstrap", "ci"]
    uid = await owner_id(w.rt, w.org)
    assert keys["bootstrap"]["created_by"] == {"type": "user", "id": uid, "label": "owner@acme.test"}
    assert keys["bootstrap"]["role"] == "owner" and keys["bootstrap"]["status"] == "active"
    # the management calls above used it, the last one when the old key was revoked
    assert keys["bootstrap"]["last_used_at"] == at(timedelta(hours=1, minutes=5))
    ci = keys["ci"]
    assert (ci["role"], ci["status"], ci["created_by"]) == ("member", "revoked", bootstrap)
    assert ci["revoked_at"] == at(timedelta(hours=1, minutes=5)) and ci["last_used_at"] is None

    api = {k["name"]: k for k in review["api_keys"]}
    assert list(api) == ["live", "old"]
    project = {"id": w.project, "name": "app"}
    live, old = api["live"], api["old"]
    assert live["project"] == project and live["created_by"] == bootstrap
    assert (live["status"], live["revoked_at"], live["expires_at"]) == ("active", None, None)
    assert live["last_used_at"] == w.used_at.strftime(Z) and live["hint"] == w.live["hint"]
    assert old["project"] == project and old["status"] == "revoked" and old["last_used_at"] is None
    assert old["revoked_at"] == at(timedelta(hours=1, minutes=5))
    assert review["scim_tokens"] == [] and review["sso"] == {"status": "not_configured"}
    # no secret is in the review: not the keys, not their hashes
    text = str(review)
    assert w.live["key"] not in text and w.old["key"] not in text and "token_hash" not in text


async def test_generating_a_review_is_an_audit_event(world: World) -> None:
    w = world
    await w.call("GET", "/access-review")
    r = await w.client.get(URL, headers={**w.org.headers, "Accept": "text/csv"})
    assert r.status_code == 200
    events = (await w.call("GET", "/audit-log", params={"action": "access_review.exported"}))["data"]
    assert [e["changes"]["format"] for e in events] == ["csv", "json"]
    assert events[0]["actor"]["id"] == w.bootstrap and events[0]["target"] == {
        "type": "access_review",
        "id": None,
    }
    assert events[0]["changes"]["counts"] == {
        "members": 2,
        "invitations": 1,
        "management_keys": 2,
        "project_keys": 2,
        "scim": 0,
    }
    assert (await w.call("GET", "/audit-log/verify"))["data"]["ok"] is True


async def test_the_csv_is_the_same_document_as_one_table(world: World) -> None:
    w = world
    r = await w.client.get(URL, headers={**w.org.headers, "Accept": "text/csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="access-review.csv"'
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["kind"], row["name"] or row["email"]) for row in rows] == [
        ("member", "owner@acme.test"),
        ("member", "Dev"),
        ("invitation", "new@acme.test"),
        ("management_key", "bootstrap"),
        ("management_key", "ci"),
        ("api_key", "live"),
        ("api_key", "old"),
        ("sso", ""),
    ]
    owner, dev, invited, _, ci, live, old, sso = rows
    assert (owner["login_method"], owner["last_login_at"], owner["scim_managed"]) == ("none", "", "false")
    assert dev["email"] == "dev@acme.test" and dev["last_login_at"] == (START + timedelta(hours=1)).strftime(
        Z
    )
    assert (dev["created_by_type"], dev["created_by_id"], dev["created_by"]) == (
        "management_key",
        w.bootstrap,
        "bootstrap",
    )
    assert invited["status"] == "invited" and invited["expires_at"]
    assert ci["status"] == "revoked" and ci["revoked_at"] and ci["role"] == "member"
    assert (live["project_id"], live["project_name"], live["status"]) == (w.project, "app", "active")
    assert live["last_used_at"] == w.used_at.strftime(Z) and old["status"] == "revoked"
    assert sso["status"] == "not_configured"


async def test_a_cell_a_spreadsheet_would_run_is_quoted_as_text(world: World) -> None:
    w = world
    await w.call("POST", "/api-keys", json={"project_id": w.project, "name": "=HYPERLINK(1)"})
    r = await w.client.get(URL, headers={**w.org.headers, "Accept": "text/csv"})
    names = [row["name"] for row in csv.DictReader(io.StringIO(r.text)) if row["kind"] == "api_key"]
    assert "'=HYPERLINK(1)" in names and "=HYPERLINK(1)" not in names


@pytest.mark.parametrize("plan", ["free", "pro", "team"])
async def test_below_enterprise_the_review_is_a_402_pointing_at_enterprise(
    client: httpx.AsyncClient, org: Org, rt: Services, plan: str
) -> None:
    if plan != "free":
        await move_to(rt, org.id, plan)
    for accept in ("application/json", "text/csv"):
        r = await client.get(URL, headers={**org.headers, "Accept": accept})
        assert r.status_code == 402, r.text
        error = r.json()["error"]
        assert (error["code"], error["feature"], error["plan"]) == (
            "feature_not_in_plan",
            "access_review_export",
            plan,
        )
        assert error["upgrade"]["plan"] == "enterprise"
    # refused before anything was read: no event says a review was handed out
    async with rt.db.session() as session:
        count = await session.scalar(
            select(func.count()).where(AuditEvent.action == "access_review.exported")
        )
    assert count == 0


async def test_a_member_key_cannot_generate_a_review(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    await enterprise(rt, org)
    async with rt.db.session() as session:
        _, token = await issue_management_key(
            session, rt, org.id, name="reader", role="member", created_by=None
        )
    for accept in ("application/json", "text/csv"):
        r = await client.get(URL, headers={"Authorization": f"Bearer {token}", "Accept": accept})
        assert r.status_code == 403, r.text
        assert r.json()["error"]["required_role"] == "admin"
    ok = await client.get(URL, headers=org.headers)
    assert ok.status_code == 200 and len(ok.json()["data"]["management_keys"]) == 2
