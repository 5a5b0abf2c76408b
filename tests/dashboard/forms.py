"""Driving the dashboard's forms over HTTP, as a browser without JavaScript would."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "page has no CSRF field"
    return found.group(1)


@asynccontextmanager
async def browser(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    # https, because the test settings' public URL is https and the cookies are Secure
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://modelux.test") as client:
        yield client


async def post_form(
    client: httpx.AsyncClient, page: str, action: str, data: dict[str, str]
) -> httpx.Response:
    """Load `page`, take its CSRF token, and submit `data` to `action`."""
    token = csrf_of((await client.get(page)).text)
    return await client.post(action, data={**data, "csrf_token": token})


async def sign_up(
    client: httpx.AsyncClient, org: str = "Acme", email: str = "owner@acme.test", password: str = PASSWORD
) -> httpx.Response:
    return await post_form(
        client, "/signup", "/signup", {"org_name": org, "email": email, "password": password}
    )


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await post_form(client, "/login", "/login", {"email": email, "password": password})


async def submit_routing_form(
    client: httpx.AsyncClient, *, slug: str, strategy: str, fields: str
) -> httpx.Response:
    """Create a project, then post the routing-config form for it with these strategy fields."""
    await post_form(client, "/projects", "/projects/create", {"name": "web"})
    page = (await client.get("/routing-configs")).text
    project_id = page.split('<option value="', 1)[1].split('"', 1)[0]
    return await client.post(
        "/routing-configs/create",
        data={
            "project_id": project_id,
            "slug": slug,
            "strategy": strategy,
            "fields": fields,
            "csrf_token": csrf_of(page),
        },
    )
