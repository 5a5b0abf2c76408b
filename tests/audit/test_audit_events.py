"""Every change leaves its audit event, on SQLite and PostgreSQL: the right action, actor
(through the API, the dashboard or MCP) and diff; never a secret; nothing when the change fails."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from modelux_server.audit import chain
from modelux_server.audit.actions import ACTIONS, ACTOR_TYPES
from modelux_server.audit.service import render
from modelux_server.auth.principal import Principal
from modelux_server.config import Settings
from modelux_server.errors import ModeluxError
from modelux_server.kit.clock import FrozenClock
from modelux_server.kit.secrets import token_hash
from modelux_server.models import AuditEvent, ProviderCredential, User
from modelux_server.organization.service import create_organization
from modelux_server.project import service as projects
from modelux_server.services import Services
from tests.conftest import START, Org, make_org
from tests.dashboard.forms import browser, csrf_of, log_in, post_form, sign_up
from tests.mcp.conftest import http_client, ok
from tests.support.invitations import emailed_link, join
from tests.support.live_server import LiveServer

API = "/manage/v1"
NOW = str(START)  # how a moment reads in an event's changes
MANAGEMENT_KEY = re.compile(r"mlx_mk_[0-9A-Za-z]{20,}")


async def events(rt: Services, org_id: str, *actions: str) -> list[dict[str, Any]]:
    """The organization's events as the API renders them, oldest first (optionally of `actions`)."""
    async with rt.db.session() as session:
        rows = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.org_id == org_id).order_by(AuditEvent.seq)
            )
        )
    return [render(row) for row in rows if not actions or row.action in actions]


async def event_count(rt: Services) -> int:
    async with rt.db.session() as session:
        return int((await session.execute(select(func.count()).select_from(AuditEvent))).scalar_one())


def who(event: dict[str, Any]) -> tuple[str, str | None, str | None, str | None]:
    actor = event["actor"]
    return actor["type"], actor["id"], actor["label"], actor["source"]


async def bootstrap_key_id(rt: Services, org: Org) -> str:
    [created] = await events(rt, org.id, "management_key.created")
    key_id: str = created["target"]["id"]
    return key_id


async def user_id_of(rt: Services, email: str) -> str:
    async with rt.db.session() as session:
        return (await session.execute(select(User.id).where(User.email == email))).scalar_one()


async def org_id_named(rt: Services, name: str) -> str:
    from modelux_server.models import Organization

    async with rt.db.session() as session:
        return (await session.execute(select(Organization.id).where(Organization.name == name))).scalar_one()


# ---------------------------------------------------------------- organizations


async def test_a_new_organization_starts_its_log_with_its_creation(org: Org, rt: Services) -> None:
    created, key = await events(rt, org.id)
    assert created["seq"] == 1 and created["action"] == "organization.created"
    # `modelux bootstrap` (the fixture's path) is the operator at the command line
    assert who(created) == ("operator", "cli", "cli", "cli")
    assert created["target"] == {"type": "organization", "id": org.id}
    assert created["changes"] == {
        "name": {"from": None, "to": "Acme"},
        "owner": {"from": None, "to": "owner@acme.test"},
        "plan": {"from": None, "to": "free"},
    }
    assert key["action"] == "management_key.created" and who(key) == ("operator", "cli", "cli", "cli")
    assert key["changes"]["name"] == {"from": None, "to": "bootstrap"}
    assert key["changes"]["role"] == {"from": None, "to": "owner"}
    assert key["changes"]["hint"]["to"].startswith("mlx_mk_...")


async def test_signing_up_is_recorded_as_the_new_owner_through_the_dashboard(app: Any, rt: Services) -> None:
    async with browser(app) as client:
        await sign_up(client, "Globex", "boss@globex.test")
    org_id = await org_id_named(rt, "Globex")
    boss = await user_id_of(rt, "boss@globex.test")
    created, login = await events(rt, org_id)
    assert created["action"] == "organization.created" and created["seq"] == 1
    assert who(created) == ("user", boss, "boss@globex.test", "dashboard")
    assert login["action"] == "user.login" and who(login) == ("user", boss, "boss@globex.test", "dashboard")
    assert login["target"]["type"] == "session"


# ---------------------------------------------------------------- projects and keys


async def test_project_changes_carry_the_key_and_the_fields_that_changed(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    key_id = await bootstrap_key_id(rt, org)
    h = org.headers
    r = await client.post(f"{API}/projects", json={"name": "web", "description": "site"}, headers=h)
    project_id = r.json()["data"]["id"]
    await client.patch(f"{API}/projects/{project_id}", json={"name": "shop"}, headers=h)
    # a PATCH that changes nothing records nothing
    await client.patch(f"{API}/projects/{project_id}", json={"name": "shop"}, headers=h)
    api_key = (await client.post(f"{API}/api-keys", json={"project_id": project_id}, headers=h)).json()[
        "data"
    ]
    assert (await client.delete(f"{API}/projects/{project_id}", headers=h)).status_code == 200

    found = await events(
        rt, org.id, "project.created", "project.updated", "project.deleted", "api_key.revoked"
    )
    assert [e["action"] for e in found] == [
        "project.created",
        "project.updated",
        "project.deleted",
        "api_key.revoked",
    ]
    created, updated, deleted, revoked = found
    for event in found:
        assert who(event) == ("management_key", key_id, "bootstrap", "api")
    assert created["actor"]["ip"] == "127.0.0.1"
    assert created["actor"]["user_agent"].startswith("python-httpx/")
    assert created["request_id"] and created["request_id"] != updated["request_id"]
    assert created["target"] == {"type": "project", "id": project_id}
    assert created["changes"] == {
        "name": {"from": None, "to": "web"},
        "description": {"from": None, "to": "site"},
    }
    assert updated["changes"] == {"name": {"from": "web", "to": "shop"}}
    assert deleted["changes"] == {
        "name": {"from": "shop", "to": None},
        "description": {"from": "site", "to": None},
    }
    # deleting a project revokes its keys, each on record
    assert revoked["target"] == {"type": "api_key", "id": api_key["id"]}
    assert revoked["changes"] == {
        "revoked_at": {"from": None, "to": NOW},
        "reason": {"from": None, "to": "project deleted"},
    }


async def test_api_key_events_hold_its_hint_and_limit_and_revoking_twice_records_once(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    h = org.headers
    project_id = (await client.post(f"{API}/projects", json={"name": "web"}, headers=h)).json()["data"]["id"]
    body = {"project_id": project_id, "name": "ci", "rate_limit_per_minute": 120}
    key = (await client.post(f"{API}/api-keys", json=body, headers=h)).json()["data"]
    await client.patch(
        f"{API}/api-keys/{key['id']}", json={"name": "ci", "rate_limit_per_minute": 60}, headers=h
    )
    await client.delete(f"{API}/api-keys/{key['id']}", headers=h)
    assert (await client.delete(f"{API}/api-keys/{key['id']}", headers=h)).status_code == 200

    created, updated, revoked = await events(
        rt, org.id, "api_key.created", "api_key.updated", "api_key.revoked"
    )
    assert created["target"] == {"type": "api_key", "id": key["id"]}
    assert created["changes"] == {
        "name": {"from": None, "to": "ci"},
        "project_id": {"from": None, "to": project_id},
        "hint": {"from": None, "to": key["hint"]},
        "rate_limit_per_minute": {"from": None, "to": 120},
    }
    assert updated["changes"] == {"rate_limit_per_minute": {"from": 120, "to": 60}}
    assert revoked["changes"] == {"revoked_at": {"from": None, "to": NOW}}
    assert key["key"] not in json.dumps([created, updated, revoked])


async def test_management_keys_created_and_revoked(client: httpx.AsyncClient, org: Org, rt: Services) -> None:
    key_id = await bootstrap_key_id(rt, org)
    made = (
        await client.post(
            f"{API}/management-keys", json={"name": "deploy", "role": "member"}, headers=org.headers
        )
    ).json()["data"]
    await client.delete(f"{API}/management-keys/{made['id']}", headers=org.headers)
    _, created, revoked = await events(rt, org.id, "management_key.created", "management_key.revoked")
    assert who(created) == ("management_key", key_id, "bootstrap", "api") == who(revoked)
    assert created["target"] == {"type": "management_key", "id": made["id"]}
    assert created["changes"] == {
        "name": {"from": None, "to": "deploy"},
        "role": {"from": None, "to": "member"},
        "hint": {"from": None, "to": made["hint"]},
        "created_by": {"from": None, "to": key_id},
    }
    assert revoked["changes"] == {"revoked_at": {"from": None, "to": NOW}}


async def test_provider_credentials_show_only_their_masked_hint(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    first, second = "sk-proj-" + "a" * 30 + "wxyz", "sk-proj-" + "b" * 30 + "1234"
    body = {"vendor": "openai", "name": "main", "api_key": first}
    made = (await client.post(f"{API}/providers", json=body, headers=org.headers)).json()["data"]
    await client.patch(
        f"{API}/providers/{made['id']}", json={"name": "primary", "api_key": second}, headers=org.headers
    )
    await client.delete(f"{API}/providers/{made['id']}", headers=org.headers)

    created, updated, deleted = await events(
        rt,
        org.id,
        "provider_credential.created",
        "provider_credential.updated",
        "provider_credential.deleted",
    )
    assert created["target"] == {"type": "provider_credential", "id": made["id"]}
    assert created["changes"] == {
        "vendor": {"from": None, "to": "openai"},
        "name": {"from": None, "to": "main"},
        "hint": {"from": None, "to": "sk-...wxyz"},
        "default": {"from": None, "to": True},
    }
    assert updated["changes"] == {
        "name": {"from": "main", "to": "primary"},
        "hint": {"from": "sk-...wxyz", "to": "sk-...1234"},
        "key_replaced": {"from": None, "to": True},
    }
    assert deleted["changes"] == {
        "vendor": {"from": "openai", "to": None},
        "name": {"from": "primary", "to": None},
        "hint": {"from": "sk-...1234", "to": None},
        "default": {"from": True, "to": None},
    }


# ---------------------------------------------------------------- routing


async def test_routing_config_versions_and_rollbacks_carry_their_numbers_and_spec_diff(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    h = org.headers
    project_id = (await client.post(f"{API}/projects", json={"name": "web"}, headers=h)).json()["data"]["id"]
    body = {"project_id": project_id, "slug": "chat", "strategy": "single", "model": "openai/gpt-4o"}
    config = (await client.post(f"{API}/routing-configs", json=body, headers=h)).json()["data"]
    url = f"{API}/routing-configs/{config['id']}"
    assert (await client.patch(url, json={"model": "openai/gpt-4o-mini"}, headers=h)).status_code == 200
    assert (await client.post(f"{url}/rollback", json={"version": 1}, headers=h)).status_code == 200
    assert (await client.delete(url, headers=h)).status_code == 200

    created, updated, rolled_back, deleted = await events(
        rt,
        org.id,
        "routing_config.created",
        "routing_config.updated",
        "routing_config.rolled_back",
        "routing_config.deleted",
    )
    assert [e["action"] for e in (created, updated, rolled_back, deleted)] == [
        "routing_config.created",
        "routing_config.updated",
        "routing_config.rolled_back",
        "routing_config.deleted",
    ]
    assert created["target"] == {"type": "routing_config", "id": config["id"]}
    assert created["changes"] == {
        "slug": {"from": None, "to": "chat"},
        "project_id": {"from": None, "to": project_id},
        "version": {"from": None, "to": 1},
        "strategy": {"from": None, "to": "single"},
        "spec.model": {"from": None, "to": "openai/gpt-4o"},
    }
    assert updated["changes"] == {
        "version": {"from": 1, "to": 2},
        "spec.model": {"from": "openai/gpt-4o", "to": "openai/gpt-4o-mini"},
    }
    assert rolled_back["changes"] == {
        "version": {"from": 2, "to": 3},
        "spec.model": {"from": "openai/gpt-4o-mini", "to": "openai/gpt-4o"},
        "restored_from": {"from": None, "to": 1},
    }
    assert deleted["changes"] == {
        "slug": {"from": "chat", "to": None},
        "project_id": {"from": project_id, "to": None},
        "version": {"from": 3, "to": None},
    }


# ---------------------------------------------------------------- members


async def test_members_and_invitations_from_invite_to_removal(
    app: Any, client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    key_id = await bootstrap_key_id(rt, org)
    h = org.headers
    invited = (
        await client.post(f"{API}/members", json={"email": "dev@acme.test", "role": "admin"}, headers=h)
    ).json()["data"]
    await join(app, rt, "dev@acme.test")
    dev = await user_id_of(rt, "dev@acme.test")
    [member] = [
        m for m in (await client.get(f"{API}/members", headers=h)).json()["data"] if m["user_id"] == dev
    ]

    # the new admin makes a key in the dashboard, and invites a friend with it
    async with browser(app) as person:
        assert (await log_in(person, "dev@acme.test")).status_code == 303
        page = await post_form(
            person, "/management-keys", "/management-keys/create", {"name": "dev", "role": "admin"}
        )
        found = MANAGEMENT_KEY.search(page.text)
        assert page.status_code == 200 and found is not None
    dev_key = {"Authorization": f"Bearer {found.group(0)}"}
    friend = (
        await client.post(f"{API}/members", json={"email": "friend@acme.test"}, headers=dev_key)
    ).json()["data"]
    other = (await client.post(f"{API}/members", json={"email": "x@acme.test"}, headers=h)).json()["data"]
    await client.delete(f"{API}/invitations/{other['id']}", headers=h)
    await client.patch(f"{API}/members/{member['id']}", json={"role": "member"}, headers=h)
    assert (await client.delete(f"{API}/members/{member['id']}", headers=h)).status_code == 200

    people = await events(
        rt,
        org.id,
        "member.invited",
        "member.joined",
        "member.invitation_revoked",
        "member.role_changed",
        "member.removed",
        "management_key.created",
        "management_key.revoked",
    )
    assert [(e["action"], e["target"]["id"]) for e in people] == [
        ("management_key.created", key_id),
        ("member.invited", invited["id"]),
        ("member.joined", member["id"]),
        ("management_key.created", people[3]["target"]["id"]),
        ("member.invited", friend["id"]),
        ("member.invited", other["id"]),
        ("member.invitation_revoked", other["id"]),
        ("member.role_changed", member["id"]),
        ("member.removed", member["id"]),
        # what acted for the removed member ends with them, on record
        ("management_key.revoked", people[3]["target"]["id"]),
        ("member.invitation_revoked", friend["id"]),
    ]
    by_key = ("management_key", key_id, "bootstrap", "api")
    invite, joined, dev_made, friend_invite = people[1:5]
    assert who(invite) == by_key and invite["target"]["type"] == "invitation"
    assert invite["changes"] == {
        "email": {"from": None, "to": "dev@acme.test"},
        "role": {"from": None, "to": "admin"},
        "expires_at": {"from": None, "to": "2026-12-05 12:00:00+00:00"},
    }
    assert who(joined) == ("user", dev, "dev@acme.test", "dashboard")
    assert joined["changes"] == {
        "user_id": {"from": None, "to": dev},
        "email": {"from": None, "to": "dev@acme.test"},
        "role": {"from": None, "to": "admin"},
        "invitation": {"from": None, "to": invited["id"]},
    }
    assert who(dev_made) == ("user", dev, "dev@acme.test", "dashboard")
    assert dev_made["changes"]["created_by"] == {"from": None, "to": dev}
    assert who(friend_invite) == ("management_key", dev_made["target"]["id"], "dev", "api")
    role, removed, key_gone, friend_gone = people[7:]
    assert all(who(e) == by_key for e in (role, removed, key_gone, friend_gone, people[6]))
    assert role["changes"] == {"role": {"from": "admin", "to": "member"}}
    assert removed["changes"] == {
        "user_id": {"from": dev, "to": None},
        "email": {"from": "dev@acme.test", "to": None},
        "role": {"from": "member", "to": None},
    }
    assert key_gone["changes"]["reason"] == {"from": None, "to": "creator removed"}
    assert friend_gone["changes"]["reason"] == {"from": None, "to": "sender removed"}


# ---------------------------------------------------------------- dashboard sessions


async def test_logins_failed_logins_and_logouts(app: Any, rt: Services) -> None:
    async with browser(app) as client:
        await sign_up(client)
        await client.post("/logout", data={"csrf_token": csrf_of((await client.get("/projects")).text)})
    acme = await org_id_named(rt, "Acme")
    owner = await user_id_of(rt, "owner@acme.test")
    # the same person owns a second organization
    async with rt.db.session() as session:
        second = (await create_organization(session, rt, name="Second", owner_email="owner@acme.test")).org.id

    async with browser(app) as client:
        assert (await log_in(client, "Owner@Acme.test", "not my password")).status_code == 401
        before = await event_count(rt)
        # an address with no account belongs to no organization: nothing to record
        assert (await log_in(client, "nobody@acme.test", "whatever")).status_code == 401
        assert await event_count(rt) == before
        assert (await log_in(client, "owner@acme.test")).status_code == 303

    sessions = await events(rt, acme, "user.login", "user.logout", "user.login_failed")
    assert [e["action"] for e in sessions] == ["user.login", "user.logout", "user.login_failed", "user.login"]
    signed_up, logged_out, failed, logged_in = sessions
    assert all(who(e) == ("user", owner, "owner@acme.test", "dashboard") for e in sessions)
    assert logged_out["target"] == signed_up["target"] and logged_out["target"]["type"] == "session"
    assert logged_out["changes"] == {"revoked_at": {"from": None, "to": NOW}}
    assert logged_in["target"]["id"] != signed_up["target"]["id"]
    assert failed["target"] == {"type": "user", "id": owner} and failed["changes"] == {}
    assert failed["actor"]["ip"] == "127.0.0.1"
    # a failure is on record in each organization of the account
    [elsewhere] = await events(rt, second, "user.login_failed")
    assert who(elsewhere) == who(failed)


# ---------------------------------------------------------------- through the dashboard and MCP


async def test_dashboard_changes_name_the_user_through_the_dashboard(app: Any, rt: Services) -> None:
    async with browser(app) as client:
        await sign_up(client)
        assert (await post_form(client, "/projects", "/projects/create", {"name": "web"})).status_code == 303
    acme = await org_id_named(rt, "Acme")
    [created] = await events(rt, acme, "project.created")
    assert who(created) == ("user", await user_id_of(rt, "owner@acme.test"), "owner@acme.test", "dashboard")
    assert created["changes"] == {"name": {"from": None, "to": "web"}}


@pytest.fixture
def live(settings: Settings, clock: FrozenClock) -> Iterator[LiveServer]:
    server = LiveServer(settings, clock=clock).start()
    yield server
    server.stop()


async def test_mcp_changes_name_the_key_through_mcp(live: LiveServer) -> None:
    org: Org = await live.acall(make_org(live.runtime))
    key_id = await live.acall(bootstrap_key_id(live.runtime, org))
    cap = {"name": "org cap", "scope": "organization", "amount_usd": 250, "period": "monthly"}
    async with http_client(live, org.key) as mcp:
        ok(await mcp.call_tool("create_project", {"name": "web"}))
        budget = ok(await mcp.call_tool("create_budget", cap))
        ok(await mcp.call_tool("update_budget", {"budget_id": budget["id"], "amount_usd": 12.5}))
        ok(await mcp.call_tool("delete_budget", {"budget_id": budget["id"]}))
    found = await live.acall(
        events(live.runtime, org.id, "project.created", "budget.created", "budget.updated", "budget.deleted")
    )
    assert [e["action"] for e in found] == [
        "project.created",
        "budget.created",
        "budget.updated",
        "budget.deleted",
    ]
    assert all(who(e) == ("management_key", key_id, "bootstrap", "mcp") for e in found)
    _, created, updated, deleted = found
    assert created["target"] == {"type": "budget", "id": budget["id"]}
    assert created["changes"] == {
        "name": {"from": None, "to": "org cap"},
        "scope": {"from": None, "to": "organization"},
        "scope_id": {"from": None, "to": org.id},
        "amount_usd": {"from": None, "to": 250},
        "period": {"from": None, "to": "monthly"},
        "action": {"from": None, "to": budget["action"]},
        "thresholds": {"from": None, "to": budget["thresholds"]},
    }
    assert updated["changes"] == {"amount_usd": {"from": 250, "to": 12.5}}
    assert deleted["changes"]["name"] == {"from": "org cap", "to": None}


# ---------------------------------------------------------------- secrets and failures


async def test_no_secret_the_api_hands_out_is_in_any_stored_event(
    app: Any, client: httpx.AsyncClient, rt: Services
) -> None:
    password, wrong = "my own dashboard passphrase", "a guess that is not it"
    async with browser(app) as person:
        await sign_up(person, password=password)
        page = await post_form(
            person, "/management-keys", "/management-keys/create", {"name": "ci", "role": "owner"}
        )
        found = MANAGEMENT_KEY.search(page.text)
        assert found is not None
        cookie = person.cookies.get("mlx_session") or ""
        await person.post("/logout", data={"csrf_token": csrf_of((await person.get("/projects")).text)})
        assert (await log_in(person, "owner@acme.test", wrong)).status_code == 401
    management_key = found.group(0)
    h = {"Authorization": f"Bearer {management_key}"}
    project = (await client.post(f"{API}/projects", json={"name": "web"}, headers=h)).json()["data"]
    api_key = (await client.post(f"{API}/api-keys", json={"project_id": project["id"]}, headers=h)).json()[
        "data"
    ]
    upstream, rotated = "sk-upstream-" + "q" * 32 + "9876", "sk-upstream-" + "r" * 32 + "5432"
    body = {"vendor": "openai", "name": "main", "api_key": upstream}
    provider = (await client.post(f"{API}/providers", json=body, headers=h)).json()["data"]
    await client.patch(f"{API}/providers/{provider['id']}", json={"api_key": rotated}, headers=h)
    await client.post(f"{API}/members", json={"email": "dev@acme.test"}, headers=h)
    invitation = (await emailed_link(rt, "invitation", "dev@acme.test")).split("token=")[1]

    async with rt.db.session() as session:
        stored = list(await session.scalars(select(AuditEvent)))
        password_hash = (await session.execute(select(User.password_hash))).scalar_one()
        ciphertext = (await session.execute(select(ProviderCredential.secret_encrypted))).scalar_one()
    assert password_hash is not None
    tokens = [management_key, api_key["key"], cookie, invitation]
    secrets = [password, wrong, upstream, rotated, password_hash, ciphertext]
    secrets += tokens + [token_hash(t) for t in tokens]
    assert all(s and len(s) >= 20 for s in secrets)
    columns = [c.name for c in AuditEvent.__table__.columns]
    text = json.dumps([{c: getattr(row, c) for c in columns} for row in stored], default=str)
    assert {
        "api_key.created",
        "management_key.created",
        "provider_credential.updated",
        "user.login_failed",
    } <= {row.action for row in stored}
    # what the events do show of them: the search reads the right text
    assert api_key["hint"] in text and "sk-...9876" in text and "sk-...5432" in text
    for secret in secrets:
        assert secret not in text, secret[:12]


async def test_a_change_that_fails_leaves_no_event(
    app: Any, client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    h = org.headers
    project_id = (await client.post(f"{API}/projects", json={"name": "web"}, headers=h)).json()["data"]["id"]
    before = await event_count(rt)
    over = await client.post(f"{API}/projects", json={"name": "two"}, headers=h)
    assert over.status_code == 402
    bad = {
        "project_id": project_id,
        "slug": "chat",
        "strategy": "single",
        "model": "openai/gpt-4o",
        "timeout_ms": 5,
    }
    assert (await client.post(f"{API}/routing-configs", json=bad, headers=h)).status_code == 422
    assert (
        await client.patch(f"{API}/projects/{project_id}", json={"name": ""}, headers=h)
    ).status_code == 422
    assert await event_count(rt) == before

    # a change recorded and then undone by a later failure in its transaction leaves neither
    owner = Principal(org.id, "owner", "usr_test")
    with pytest.raises(ModeluxError):
        async with rt.db.session() as session:
            await projects.update(session, rt, owner, project_id, {"name": "renamed"})
            await projects.create(session, rt, owner, name="over the limit", description=None)
    assert await event_count(rt) == before
    assert (await client.get(f"{API}/projects/{project_id}", headers=h)).json()["data"]["name"] == "web"

    # through the dashboard too
    async with browser(app) as person:
        await sign_up(person, "Globex", "boss@globex.test")
        assert (await post_form(person, "/projects", "/projects/create", {"name": "one"})).status_code == 303
        counted = await event_count(rt)
        refused = await post_form(person, "/projects", "/projects/create", {"name": "two"})
        assert refused.status_code == 402
    assert await event_count(rt) == counted
    async with rt.db.session() as session:
        assert (await chain.verify(session, org.id)).ok


def test_the_documented_actions_and_actors_are_the_whole_lists() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "audit-log.md").read_text()
    actions = doc.split("\n## Actions\n", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", actions, re.M) == list(ACTIONS)
    actors = doc.split("\nWho can be an actor:\n", 1)[1].split("\n\n", 1)[0]
    assert re.findall(r"^\| `([a-z_]+)` \|", actors, re.M)[1:] == list(ACTOR_TYPES)
