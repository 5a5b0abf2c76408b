"""Invitations cannot be turned into a way back in, a way into other
organizations, or a mail relay.

* a removed member's pending invitations (sent by them or by the keys that
  were their reach) are revoked with them;
* a passwordless row left by the old `POST /members` joins only the
  organization whose invitation it accepts;
* an organization sends invitations only once verified, and a bounded number
  an hour.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from modelux_server.auth.principal import Principal
from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from modelux_server.kit.ids import new_id
from modelux_server.management_key.service import issue_management_key
from modelux_server.member.invitations import invite
from modelux_server.models import Invitation, Membership, Notification, User
from modelux_server.services import Services
from tests.conftest import Org, make_org
from tests.dashboard.forms import PASSWORD, browser, csrf_of, log_in
from tests.support.invitations import emailed_link, join, path_of

INVITE = "/manage/v1/members"


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    for name, value in getattr(request, "param", {}).items():
        setattr(settings, name, value)
    return settings


async def _count(rt: Services, what: Any, *where: Any) -> int:
    async with rt.db.session() as session:
        stmt = select(func.count()).select_from(what).where(*where)
        return int((await session.execute(stmt)).scalar_one())


async def _members(client: httpx.AsyncClient, org: Org) -> set[tuple[str, str]]:
    data = (await client.get(INVITE, headers=org.headers)).json()["data"]
    return {(m["email"], m["role"]) for m in data}


async def _user_id(rt: Services, email: str) -> str:
    async with rt.db.session() as session:
        return str((await session.execute(select(User.id).where(User.email == email))).scalar_one())


# ------------------------------------------------------------------ removal


async def test_a_removed_member_cannot_rejoin_through_invitations_they_sent(
    app: Any, client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    await client.post(INVITE, json={"email": "dev@acme.test", "role": "admin"}, headers=org.headers)
    await join(app, rt, "dev@acme.test")
    dev_id = await _user_id(rt, "dev@acme.test")
    async with rt.db.session() as session:
        _, token = await issue_management_key(
            session, rt, org.id, name="dev laptop", role="admin", created_by=dev_id
        )
        # as the dashboard would, with the person as the actor
        await invite(
            session,
            rt,
            Principal(org.id, "admin", dev_id, "dashboard"),
            email="dev.dashboard@mail.test",
            role="admin",
        )
    dev_key = {"Authorization": f"Bearer {token}"}
    made = await client.post(
        "/manage/v1/management-keys", json={"name": "ci", "role": "admin"}, headers=dev_key
    )
    derived_key = {"Authorization": f"Bearer {made.json()['data']['key']}"}
    for email, headers in (("dev.key@mail.test", dev_key), ("dev.derived@mail.test", derived_key)):
        sent = await client.post(INVITE, json={"email": email, "role": "admin"}, headers=headers)
        assert sent.status_code == 201, sent.text
    colleague = await client.post(INVITE, json={"email": "colleague@acme.test"}, headers=org.headers)
    assert colleague.status_code == 201

    members = (await client.get(INVITE, headers=org.headers)).json()["data"]
    member_id = next(m["id"] for m in members if m["email"] == "dev@acme.test")
    assert (await client.delete(f"{INVITE}/{member_id}", headers=org.headers)).status_code == 200

    backdoors = ("dev.dashboard@mail.test", "dev.key@mail.test", "dev.derived@mail.test")
    for email in backdoors:
        link = await emailed_link(rt, "invitation", email)
        async with browser(app) as person:
            page = await person.get(path_of(link))
            assert page.status_code == 410 and "withdrawn" in page.text
            form = {
                "token": link.split("token=")[1],
                "name": "Dev",
                "password": PASSWORD,
                "csrf_token": csrf_of((await person.get("/login")).text),
            }
            assert (await person.post("/invitations/accept", data=form)).status_code == 410
        assert await _count(rt, User, User.email == email) == 0
    assert await _members(client, org) == {("owner@acme.test", "owner")}
    # an invitation sent by someone else is untouched
    pending = (await client.get("/manage/v1/invitations", headers=org.headers)).json()["data"]
    assert [(i["email"], i["status"]) for i in pending] == [("colleague@acme.test", "pending")]
    await join(app, rt, "colleague@acme.test")
    assert await _members(client, org) == {("owner@acme.test", "owner"), ("colleague@acme.test", "member")}


# ------------------------------------------------------------------ passwordless rows


async def test_a_passwordless_user_accepting_an_invitation_joins_only_that_organization(
    app: Any, client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    # what the old POST /members left behind: a row nobody can log in as, admin of Acme unasked
    now, ghost_id = rt.clock.now(), new_id("usr")
    async with rt.db.session() as session:
        session.add(User(id=ghost_id, email="ghost@mail.test", created_at=now))
        await session.flush()
        session.add(
            Membership(id=new_id("mem"), org_id=org.id, user_id=ghost_id, role="admin", created_at=now)
        )
    assert ("ghost@mail.test", "admin") in await _members(client, org)

    globex = await make_org(rt, "Globex", "boss@globex.test")
    r = await client.post(INVITE, json={"email": "ghost@mail.test"}, headers=globex.headers)
    assert r.status_code == 201
    await join(app, rt, "ghost@mail.test")

    assert await _members(client, org) == {("owner@acme.test", "owner")}
    assert await _members(client, globex) == {("boss@globex.test", "owner"), ("ghost@mail.test", "member")}
    assert await _count(rt, Membership, Membership.user_id == ghost_id) == 1
    async with browser(app) as person:
        assert (await log_in(person, "ghost@mail.test")).status_code == 303
        billing = (await person.get("/settings/billing")).text
        assert "Globex" in billing and "Acme" not in billing


# ------------------------------------------------------------------ verification and volume


@pytest.mark.parametrize("settings", [{"require_email_verification": True}], indirect=True)
async def test_an_unverified_organization_cannot_send_invitations(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    refused = await client.post(INVITE, json={"email": "dev@acme.test"}, headers=org.headers)
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("permission_error", "email_not_verified")
    assert "before inviting members" in error["message"]
    assert await _count(rt, Invitation) == 0
    assert await _count(rt, Notification, Notification.kind == "invitation") == 0

    async with rt.db.session() as session:
        await session.execute(
            update(User).where(User.email == org.owner_email).values(email_verified_at=rt.clock.now())
        )
    sent = await client.post(INVITE, json={"email": "dev@acme.test"}, headers=org.headers)
    assert sent.status_code == 201, sent.text
    assert await _count(rt, Notification, Notification.kind == "invitation") == 1


@pytest.mark.parametrize("settings", [{"invitations_max_per_hour": 3}], indirect=True)
async def test_an_organization_sends_a_bounded_number_of_invitations_an_hour(
    client: httpx.AsyncClient, org: Org, rt: Services, clock: FrozenClock
) -> None:
    for email in ("a@mail.test", "b@mail.test"):
        assert (await client.post(INVITE, json={"email": email}, headers=org.headers)).status_code == 201
    # an invitation that is refused sends nothing and is not counted
    again = await client.post(INVITE, json={"email": "a@mail.test"}, headers=org.headers)
    assert again.status_code == 409
    assert (await client.post(INVITE, json={"email": "c@mail.test"}, headers=org.headers)).status_code == 201

    refused = await client.post(INVITE, json={"email": "d@mail.test"}, headers=org.headers)
    assert refused.status_code == 429
    assert refused.json() == {
        "error": {
            "type": "rate_limit_error",
            "code": "too_many_invitations",
            "message": "An organization may send 3 invitations an hour. Try again in 3600 seconds.",
        }
    }
    assert refused.headers["Retry-After"] == "3600"
    assert await _count(rt, Invitation) == 3
    assert await _count(rt, Notification, Notification.kind == "invitation") == 3
    assert await _count(rt, Invitation, Invitation.email == "d@mail.test") == 0

    # per organization: another one is not held back
    globex = await make_org(rt, "Globex", "boss@globex.test")
    other = await client.post(INVITE, json={"email": "d@mail.test"}, headers=globex.headers)
    assert other.status_code == 201

    clock.advance(timedelta(minutes=30))
    later = await client.post(INVITE, json={"email": "d@mail.test"}, headers=org.headers)
    assert later.status_code == 429 and later.headers["Retry-After"] == "1800"
    clock.advance(timedelta(minutes=30, seconds=1))
    assert (await client.post(INVITE, json={"email": "d@mail.test"}, headers=org.headers)).status_code == 201


def test_the_invitation_limit_defaults_to_20_and_is_a_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings(data_dir=tmp_path).invitations_max_per_hour == 20
    monkeypatch.setenv("MODELUX_INVITATIONS_MAX_PER_HOUR", "5")
    assert Settings(data_dir=tmp_path).invitations_max_per_hour == 5
    with pytest.raises(ValueError):
        Settings(data_dir=tmp_path, invitations_max_per_hour=0)
