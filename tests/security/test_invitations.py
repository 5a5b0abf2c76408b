"""Members join by accepting an emailed invitation; removal ends what acted for them.

Before invitations, `POST /members` created a passwordless user for any
address, attached an existing user of another organization without asking
and answered with that user's id.
"""

from __future__ import annotations

import re
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, update

from modelux_server.kit.clock import FrozenClock
from modelux_server.kit.secrets import token_hash
from modelux_server.models import Invitation, Membership, Notification, PlanState, User
from modelux_server.notifications.mailer import OutboxMailer
from modelux_server.notifications.service import requeue
from modelux_server.notifications.worker import NotificationWorker
from modelux_server.services import Services
from tests.conftest import Org, make_org
from tests.dashboard.forms import PASSWORD, browser, csrf_of, log_in, sign_up
from tests.notifications.conftest import body
from tests.support.invitations import accept_with_new_account, emailed_link, join, path_of

INVITE = "/manage/v1/members"


async def _users_named(rt: Services, email: str) -> int:
    async with rt.db.session() as session:
        return int((await session.execute(select(func.count()).where(User.email == email))).scalar_one())


async def _members(client: httpx.AsyncClient, org: Org) -> set[tuple[str, str]]:
    data = (await client.get(INVITE, headers=org.headers)).json()["data"]
    return {(m["email"], m["role"]) for m in data}


async def test_adding_a_member_invites_and_creates_no_user(
    client: httpx.AsyncClient, org: Org, rt: Services, tmp_path: Path
) -> None:
    r = await client.post(INVITE, json={"email": "Dev@Acme.test", "role": "admin"}, headers=org.headers)
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert data["id"].startswith("inv_") and data["object"] == "invitation"
    assert (data["email"], data["role"], data["status"]) == ("dev@acme.test", "admin", "pending")
    assert data["expires_at"] == "2026-12-05T12:00:00Z"  # 7 days
    assert "user_id" not in data
    assert await _users_named(rt, "dev@acme.test") == 0
    assert await _members(client, org) == {("owner@acme.test", "owner")}
    pending = (await client.get("/manage/v1/invitations", headers=org.headers)).json()
    assert [i["id"] for i in pending["data"]] == [data["id"]]

    # the token travels in the email only: the outbox row holds it sealed, the table its hash
    mailer = OutboxMailer(tmp_path / "mail")
    assert await NotificationWorker(rt, mailer).run_once() == 1
    [eml] = list((tmp_path / "mail").glob("*.eml"))
    sent = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert isinstance(sent, EmailMessage) and sent["To"] == "dev@acme.test"
    assert sent["Subject"] == "[modelux] You are invited to join Acme"
    text = body(sent)
    token = re.search(r"https://modelux.test/invitations/accept\?token=(mlx_inv_[0-9A-Za-z]+)", text)
    assert token is not None and "as admin" in text
    async with rt.db.session() as session:
        row = (await session.execute(select(Notification))).scalar_one()
        stored = (await session.execute(select(Invitation))).scalar_one()
    assert token.group(1) not in str(row.payload) and stored.token_hash == token_hash(token.group(1))


async def test_the_invitee_chooses_a_password_and_joins_verified(
    app: Any, client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    await client.post(INVITE, json={"email": "dev@acme.test", "role": "admin"}, headers=org.headers)
    link = await emailed_link(rt, "invitation", "dev@acme.test")
    async with browser(app) as person:
        page = await person.get(path_of(link))
        assert "Join Acme" in page.text and "Choose a password" in page.text
        short = await accept_with_new_account(person, link, password="short")
        assert short.status_code == 422 and await _users_named(rt, "dev@acme.test") == 0
        r = await accept_with_new_account(person, link)
        assert r.status_code == 303 and r.headers["location"] == "/settings/billing?notice=joined"
        assert ">admin<" in (await person.get("/settings/billing")).text
        # the link works once
        assert (await person.get(path_of(link))).status_code == 410
    async with rt.db.session() as session:
        user = (await session.execute(select(User).where(User.email == "dev@acme.test"))).scalar_one()
    assert user.email_verified_at is not None and user.name == "Dev"
    assert await _members(client, org) == {("owner@acme.test", "owner"), ("dev@acme.test", "admin")}
    assert (await client.get("/manage/v1/invitations", headers=org.headers)).json()["data"] == []
    async with browser(app) as again:
        assert (await log_in(again, "dev@acme.test")).status_code == 303


async def test_another_organizations_user_is_neither_attached_nor_revealed(
    app: Any, client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    async with browser(app) as globex:
        await sign_up(globex, "Globex", "boss@globex.test")
    async with rt.db.session() as session:
        boss = (await session.execute(select(User).where(User.email == "boss@globex.test"))).scalar_one()
    r = await client.post(INVITE, json={"email": "boss@globex.test"}, headers=org.headers)
    assert r.status_code == 201 and boss.id not in r.text
    assert await _members(client, org) == {("owner@acme.test", "owner")}
    link = await emailed_link(rt, "invitation", "boss@globex.test")
    token = link.split("token=")[1]

    # holding the link is not enough: the account's password is asked, under the login limits
    async with browser(app) as stranger:
        page = await stranger.get(path_of(link))
        assert "enter its password" in page.text and "Choose a password" not in page.text
        r = await accept_with_new_account(stranger, link, password="attacker-password")
        assert r.status_code == 401 and "Wrong password" in r.text
    # logged in as someone else, the link is refused
    async with browser(app) as other:
        await sign_up(other, "Initech", "peter@initech.test")
        page = await other.get(path_of(link))
        assert "logged in as peter@initech.test" in page.text
        r = await other.post("/invitations/accept", data={"token": token, "csrf_token": csrf_of(page.text)})
        assert r.status_code == 403
    assert await _members(client, org) == {("owner@acme.test", "owner")}

    # the address's owner, logged in, confirms
    async with browser(app) as boss_browser:
        assert (await log_in(boss_browser, "boss@globex.test")).status_code == 303
        page = await boss_browser.get(path_of(link))
        assert "Join Acme" in page.text
        r = await boss_browser.post(
            "/invitations/accept", data={"token": token, "csrf_token": csrf_of(page.text)}
        )
        assert r.status_code == 303
        billing = (await boss_browser.get("/settings/billing")).text
        assert "Acme" in billing and ">member<" in billing
    assert await _members(client, org) == {("owner@acme.test", "owner"), ("boss@globex.test", "member")}


async def test_invitations_expire_and_can_be_revoked(
    app: Any, client: httpx.AsyncClient, org: Org, rt: Services, clock: FrozenClock
) -> None:
    first = (await client.post(INVITE, json={"email": "a@acme.test"}, headers=org.headers)).json()["data"]
    again = await client.post(INVITE, json={"email": "a@acme.test"}, headers=org.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_invited"
    revoked = await client.delete(f"/manage/v1/invitations/{first['id']}", headers=org.headers)
    assert revoked.status_code == 200 and revoked.json()["data"]["status"] == "revoked"
    async with browser(app) as person:
        page = await person.get(path_of(await emailed_link(rt, "invitation", "a@acme.test")))
        assert page.status_code == 410 and "withdrawn" in page.text

    await client.post(INVITE, json={"email": "b@acme.test"}, headers=org.headers)
    link = await emailed_link(rt, "invitation", "b@acme.test")
    clock.advance(timedelta(days=7, seconds=1))
    async with browser(app) as late:
        assert (await late.get(path_of(link))).status_code == 410
        token = link.split("token=")[1]
        form = {"token": token, "password": PASSWORD, "csrf_token": csrf_of((await late.get("/login")).text)}
        assert (await late.post("/invitations/accept", data=form)).status_code == 410
    assert await _users_named(rt, "b@acme.test") == 0
    assert (await client.get("/manage/v1/invitations", headers=org.headers)).json()["data"] == []
    async with browser(app) as guess:
        assert (await guess.get("/invitations/accept?token=mlx_inv_nope")).status_code == 404


async def test_roles_still_bound_who_may_invite_whom(client: httpx.AsyncClient, org: Org) -> None:
    admin = (
        await client.post(
            "/manage/v1/management-keys", json={"name": "a", "role": "admin"}, headers=org.headers
        )
    ).json()["data"]
    headers = {"Authorization": f"Bearer {admin['key']}"}
    r = await client.post(INVITE, json={"email": "x@acme.test", "role": "owner"}, headers=headers)
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    bad = await client.post(INVITE, json={"email": "x@acme.test,y@evil.test"}, headers=org.headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_email"
    assert (await client.get("/manage/v1/invitations", headers=headers)).json()["data"] == []


async def test_removing_a_member_revokes_their_keys_and_ends_their_sessions(
    app: Any, client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    await client.post(INVITE, json={"email": "dev@acme.test", "role": "admin"}, headers=org.headers)
    await join(app, rt, "dev@acme.test")
    other_admin = (
        await client.post(
            "/manage/v1/management-keys", json={"name": "ops", "role": "admin"}, headers=org.headers
        )
    ).json()["data"]
    async with browser(app) as dev:
        assert (await log_in(dev, "dev@acme.test")).status_code == 303
        page = await dev.get("/management-keys")
        made = await dev.post(
            "/management-keys/create",
            data={"name": "dev laptop", "role": "admin", "csrf_token": csrf_of(page.text)},
        )
        found = re.search(r"mlx_mk_[0-9A-Za-z]+", made.text)
        assert made.status_code == 200 and found is not None
        dev_key = {"Authorization": f"Bearer {found.group(0)}"}
        # a key made with the member's key is the member's reach too
        derived = (
            await client.post(
                "/manage/v1/management-keys", json={"name": "ci", "role": "member"}, headers=dev_key
            )
        ).json()["data"]
        derived_key = {"Authorization": f"Bearer {derived['key']}"}
        assert (await client.get("/manage/v1/projects", headers=derived_key)).status_code == 200

        members = (await client.get(INVITE, headers=org.headers)).json()["data"]
        member_id = next(m["id"] for m in members if m["email"] == "dev@acme.test")
        removed = await client.delete(f"/manage/v1/members/{member_id}", headers=org.headers)
        assert removed.status_code == 200

        for headers in (dev_key, derived_key):
            r = await client.get("/manage/v1/projects", headers=headers)
            assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        assert (await dev.get("/projects")).status_code == 303  # back to /login
    # keys made by others stay
    ops = {"Authorization": f"Bearer {other_admin['key']}"}
    assert (await client.get("/manage/v1/projects", headers=ops)).status_code == 200
    assert (await client.get("/manage/v1/projects", headers=org.headers)).status_code == 200

    # in no organization now, the person cannot log in; invited again, the
    # invitation page takes their password, and old keys stay dead
    async with browser(app) as dev:
        assert (await log_in(dev, "dev@acme.test")).status_code == 401
    await client.post(INVITE, json={"email": "dev@acme.test", "role": "admin"}, headers=org.headers)
    async with browser(app) as dev:
        link = await emailed_link(rt, "invitation", "dev@acme.test")
        page = await dev.get(path_of(link))
        token = link.split("token=")[1]
        r = await dev.post(
            "/invitations/accept",
            data={"token": token, "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        )
        assert r.status_code == 303
    assert (await client.get("/manage/v1/projects", headers=dev_key)).status_code == 401
    async with rt.db.session() as session:
        count = (await session.execute(select(func.count()).select_from(Membership))).scalar_one()
    assert count == 2


async def test_member_listing_still_shows_emails_of_real_members(
    app: Any, client: httpx.AsyncClient, rt: Services
) -> None:
    org = await make_org(rt, "Hooli", "gavin@hooli.test")
    await client.post(INVITE, json={"email": "dinesh@hooli.test"}, headers=org.headers)
    await join(app, rt, "dinesh@hooli.test", PASSWORD)
    data = (await client.get(INVITE, headers=org.headers)).json()["data"]
    assert sorted(m["email"] for m in data) == ["dinesh@hooli.test", "gavin@hooli.test"]
    assert all(m["user_id"].startswith("usr_") for m in data)


async def test_a_retried_invitation_still_goes_only_to_the_invitee(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    await client.post(INVITE, json={"email": "dev@acme.test"}, headers=org.headers)
    async with rt.db.session() as session:
        await session.execute(update(PlanState).values(billing_email="billing@acme.test"))
        await session.execute(update(Notification).values(status="failed"))
        row_id = (await session.execute(select(Notification.id))).scalar_one()
    async with rt.db.session() as session:
        row = await requeue(session, rt, row_id)
        assert row.recipients == ["dev@acme.test"]
