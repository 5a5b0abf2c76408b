"""Self-serve signup cannot be scripted: limits per address and per email domain,
and provider credentials wait for a confirmed email when verification is required."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from modelux_server.kit.db import Database
from modelux_server.models import Notification, Organization, User
from modelux_server.notifications.mailer import mailer_from_settings
from modelux_server.notifications.worker import NotificationWorker
from modelux_server.organization.verification import org_is_verified
from modelux_server.services import Services
from tests.conftest import make_org
from tests.dashboard.forms import csrf_of, sign_up
from tests.notifications.conftest import SmtpSink, body
from tests.notifications.test_mailer import EphemeralController
from tests.support.invitations import emailed_link, path_of

PROVIDER = {"vendor": "openai", "name": "main", "api_key": "sk-test-1234567890"}


@asynccontextmanager
async def visitor(app: Any, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser whose connection comes from `address`."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://modelux.test") as client:
        yield client


async def _count(rt: Services, what: Any, *where: Any) -> int:
    async with rt.db.session() as session:
        stmt = select(func.count()).select_from(what).where(*where)
        return int((await session.execute(stmt)).scalar_one())


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    for name, value in getattr(request, "param", {}).items():
        setattr(settings, name, value)
    return settings


@pytest.mark.parametrize(
    "settings", [{"signup_max_per_address": 3, "signup_max_per_domain": 100}], indirect=True
)
async def test_signups_from_one_address_are_limited_per_hour(
    app: Any, rt: Services, clock: FrozenClock
) -> None:
    for i in range(3):
        async with visitor(app, "203.0.113.7") as client:
            r = await sign_up(client, f"Org {i}", f"owner@org{i}.test")
            assert r.status_code == 303, r.text
    async with visitor(app, "203.0.113.7") as client:
        refused = await sign_up(client, "Org 3", "owner@org3.test")
    assert refused.status_code == 429
    assert "Too many new organizations from this network" in refused.text
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert "mlx_session=" not in refused.headers.get("set-cookie", "")
    assert await _count(rt, Organization) == 3
    assert await _count(rt, User, User.email == "owner@org3.test") == 0

    async with visitor(app, "198.51.100.9") as client:
        assert (await sign_up(client, "Org 3", "owner@org3.test")).status_code == 303
    clock.advance(timedelta(hours=1, seconds=1))
    async with visitor(app, "203.0.113.7") as client:
        assert (await sign_up(client, "Org 4", "owner@org4.test")).status_code == 303


@pytest.mark.parametrize(
    "settings", [{"signup_max_per_address": 100, "signup_max_per_domain": 2}], indirect=True
)
async def test_signups_for_one_email_domain_are_limited(app: Any, rt: Services) -> None:
    for i in range(2):
        async with visitor(app, f"203.0.113.{i + 1}") as client:
            assert (await sign_up(client, f"Spam {i}", f"u{i}@Spam.test")).status_code == 303
    async with visitor(app, "203.0.113.50") as client:
        refused = await sign_up(client, "Spam 2", "u2@spam.test")
        assert refused.status_code == 429 and "for this email domain" in refused.text
        # a failed form costs nothing: only created organizations count
        assert (await sign_up(client, "Fine", "me@fine.test", password="short")).status_code == 422
        assert (await sign_up(client, "Fine", "me@fine.test")).status_code == 303
    assert await _count(rt, Organization) == 3


@pytest.mark.parametrize("settings", [{"require_email_verification": True}], indirect=True)
async def test_provider_credentials_wait_for_a_confirmed_email(
    app: Any, rt: Services, clock: FrozenClock
) -> None:
    async with visitor(app, "203.0.113.7") as owner:
        r = await sign_up(owner, "Acme", "owner@acme.test")
        assert r.headers["location"] == "/settings/billing?notice=welcome_verify"
        assert "confirm your address" in (await owner.get(r.headers["location"])).text

        page = await owner.get("/providers")
        refused = await owner.post("/providers/create", data={**PROVIDER, "csrf_token": csrf_of(page.text)})
        assert refused.status_code == 403 and "Confirm the owner&#39;s email address" in refused.text

        page = await owner.get("/management-keys")
        made = await owner.post(
            "/management-keys/create", data={"name": "ci", "role": "admin", "csrf_token": csrf_of(page.text)}
        )
        found = re.search(r"mlx_mk_[0-9A-Za-z]+", made.text)
        assert found is not None
        key = {"Authorization": f"Bearer {found.group(0)}"}
        api = await owner.post("/manage/v1/providers", json=PROVIDER, headers=key)
        assert api.status_code == 403
        error = api.json()["error"]
        assert (error["type"], error["code"]) == ("permission_error", "email_not_verified")
        assert (await owner.get("/manage/v1/providers", headers=key)).json()["data"] == []

        # a forged or altered link confirms nothing
        link = await emailed_link(rt, "verify_email", "owner@acme.test")
        token = link.split("token=")[1]
        page = await owner.get(path_of(link))
        forged = token[:-1] + ("0" if token[-1] != "0" else "1")
        bad = await owner.post("/verify-email", data={"token": forged, "csrf_token": csrf_of(page.text)})
        assert bad.status_code == 400
        assert (await owner.post("/manage/v1/providers", json=PROVIDER, headers=key)).status_code == 403

        # the owner asks for another link; a new email is queued
        clock.advance(timedelta(seconds=1))
        pending = await owner.get("/verify-email")
        assert "We sent a link to owner@acme.test" in pending.text
        resent = await owner.post("/verify-email/resend", data={"csrf_token": csrf_of(pending.text)})
        assert resent.headers["location"] == "/verify-email?sent=1"
        assert await _count(rt, Notification, Notification.kind == "verify_email") == 2

        ok = await owner.post("/verify-email", data={"token": token, "csrf_token": csrf_of(page.text)})
        assert ok.status_code == 200 and "Your email address is confirmed" in ok.text
        created = await owner.post("/manage/v1/providers", json=PROVIDER, headers=key)
        assert created.status_code == 201, created.text


@pytest.mark.parametrize("settings", [{"require_email_verification": True}], indirect=True)
async def test_links_expire_and_organizations_made_by_api_wait_too(
    app: Any, client: httpx.AsyncClient, rt: Services, clock: FrozenClock
) -> None:
    org = await make_org(rt)
    r = await client.post("/manage/v1/providers", json=PROVIDER, headers=org.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "email_not_verified"

    async with visitor(app, "203.0.113.7") as owner:
        await sign_up(owner, "Globex", "boss@globex.test")
        link = await emailed_link(rt, "verify_email", "boss@globex.test")
        clock.advance(timedelta(days=3, seconds=1))
        page = await owner.get(path_of(link))
        late = await owner.post(
            "/verify-email", data={"token": link.split("token=")[1], "csrf_token": csrf_of(page.text)}
        )
        assert late.status_code == 400 and "cannot be used" in late.text
    async with rt.db.session() as session:
        boss = (await session.execute(select(User).where(User.email == "boss@globex.test"))).scalar_one()
    assert boss.email_verified_at is None


def test_verification_is_required_by_default_only_where_mail_can_arrive(tmp_path: Path) -> None:
    base = {"data_dir": tmp_path, "secret_key": "k"}
    assert Settings(**base).email_verification_required is False
    assert Settings(**base, smtp_url="smtp://mail.test:25").email_verification_required is True
    with_smtp_off = Settings(**base, smtp_url="smtp://mail.test:25", require_email_verification=False)
    assert with_smtp_off.email_verification_required is False
    assert Settings(**base, require_email_verification=True).email_verification_required is True


@pytest.fixture
def smtp_sink() -> Iterator[tuple[SmtpSink, str]]:
    sink = SmtpSink()
    controller = EphemeralController(sink, hostname="127.0.0.1", port=0)
    controller.start()
    yield sink, f"smtp://127.0.0.1:{controller.port}?timeout=5"
    controller.stop()


@pytest.fixture
def smtp_settings(settings: Settings, smtp_sink: tuple[SmtpSink, str]) -> Settings:
    settings.smtp_url = smtp_sink[1]
    return settings


async def test_with_smtp_the_owner_gets_a_real_link_that_unlocks_credentials(
    smtp_settings: Settings, app: Any, rt: Services, smtp_sink: tuple[SmtpSink, str]
) -> None:
    sink, url = smtp_sink
    async with visitor(app, "203.0.113.7") as owner:
        await sign_up(owner, "Acme", "owner@acme.test")
        mailer = mailer_from_settings(url, rt.settings.resolved_outbox_dir, rt.settings.email_from)
        assert await NotificationWorker(rt, mailer).run_once() == 1
        [message] = sink.accepted
        assert message["To"] == "owner@acme.test" and message["X-Modelux-Notification"] == "verify_email"
        found = re.search(r"https://modelux\.test(/verify-email\?token=\S+)", body(message))
        assert found is not None
        page = await owner.get(found.group(1))
        token = found.group(1).split("token=")[1]
        ok = await owner.post("/verify-email", data={"token": token, "csrf_token": csrf_of(page.text)})
        assert ok.status_code == 200
        page = await owner.get("/providers")
        added = await owner.post("/providers/create", data={**PROVIDER, "csrf_token": csrf_of(page.text)})
        assert added.status_code == 303, added.text


def test_bootstrap_owners_are_verified_by_the_operator(tmp_path: Path) -> None:
    env = {**os.environ, "MODELUX_DATA_DIR": str(tmp_path / "data")}
    cli = [sys.executable, "-m", "modelux_server.cli"]
    for args in (["migrate"], ["bootstrap", "--org", "Ops", "--email", "ops@ops.test"]):
        out = subprocess.run([*cli, *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
    org_id = next(w for w in out.stdout.split() if w.startswith("org_"))

    async def check() -> bool:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'modelux.db'}")
        try:
            async with db.session() as session:
                return await org_is_verified(session, org_id)
        finally:
            await db.dispose()

    assert asyncio.run(check()) is True
