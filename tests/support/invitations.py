"""Following emailed links in tests: read from the outbox as the mailer would send them."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select

from modelux_server.models import Notification
from modelux_server.notifications import compose
from modelux_server.services import Services
from tests.dashboard.forms import PASSWORD, browser, csrf_of


async def emailed_link(rt: Services, kind: str, to: str) -> str:
    """The link in the newest `kind` email queued for `to` (unsealed, as the worker does)."""
    async with rt.db.session() as session:
        rows = (
            await session.execute(
                select(Notification).where(Notification.kind == kind).order_by(Notification.created_at)
            )
        ).scalars()
        mine = [row for row in rows if row.recipients == [to]]
    assert mine, f"no {kind} email for {to}"
    notice: Any = compose.from_payload(kind, mine[-1].payload, unseal=rt.encryptor.decrypt)
    link: str = notice.link
    return link


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


async def accept_with_new_account(
    client: httpx.AsyncClient, link: str, password: str = PASSWORD, name: str = "Dev"
) -> httpx.Response:
    page = await client.get(path_of(link))
    assert page.status_code == 200, page.text
    token = urlsplit(link).query.removeprefix("token=")
    return await client.post(
        "/invitations/accept",
        data={"token": token, "name": name, "password": password, "csrf_token": csrf_of(page.text)},
    )


async def join(app: Any, rt: Services, email: str, password: str = PASSWORD) -> None:
    """The invited person opens the emailed link, chooses a password and joins."""
    async with browser(app) as client:
        r = await accept_with_new_account(client, await emailed_link(rt, "invitation", email), password)
        assert r.status_code == 303, r.text
