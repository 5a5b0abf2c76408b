"""Address limits count an IPv6 client by its /64: one subscriber holds the
whole /64 and can send every request from a new address in it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from modelux_server.auth.limits import client_key
from modelux_server.config import Settings
from modelux_server.models import Organization
from modelux_server.services import Services
from tests.dashboard.forms import PASSWORD, csrf_of, sign_up


@asynccontextmanager
async def visitor(app: Any, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://modelux.test") as client:
        yield client


async def _login(app: Any, address: str, email: str, password: str = "guess") -> httpx.Response:
    async with visitor(app, address) as client:
        token = csrf_of((await client.get("/login")).text)
        return await client.post("/login", data={"email": email, "password": password, "csrf_token": token})


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.login_max_failures_per_address = 12
    settings.signup_max_per_address = 2
    settings.signup_max_per_domain = 100
    return settings


def test_an_address_maps_to_its_limiter_key() -> None:
    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert client_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert client_key("2001:DB8:1:2::1") == client_key("2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert client_key("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert client_key("fe80::1%eth0") == "fe80::/64"
    assert client_key("unknown") == "unknown"


async def test_failed_logins_from_one_ipv6_64_are_limited_together(app: Any) -> None:
    async with visitor(app, "2001:db8:1:2::1") as client:
        assert (await sign_up(client, "Acme", "owner@acme.test")).status_code == 303
    # many emails, a new address in the same /64 for each guess
    for i in range(12):
        r = await _login(app, f"2001:db8:1:2::{i + 100:x}", f"user{i}@acme.test")
        assert r.status_code == 401
    blocked = await _login(app, "2001:db8:1:2:dead:beef:0:1", "owner@acme.test", PASSWORD)
    assert blocked.status_code == 429 and "from your network" in blocked.text
    assert 0 < int(blocked.headers["Retry-After"]) <= 900
    assert (await _login(app, "2001:db8:1:3::1", "owner@acme.test", PASSWORD)).status_code == 303


async def test_one_accounts_guesses_from_one_ipv6_64_are_limited_together(app: Any) -> None:
    async with visitor(app, "198.51.100.2") as client:
        assert (await sign_up(client, "Acme", "owner@acme.test")).status_code == 303
    for i in range(10):
        assert (await _login(app, f"2001:db8:7:7::{i + 1:x}", "owner@acme.test")).status_code == 401
    blocked = await _login(app, "2001:db8:7:7:1::1", "owner@acme.test", PASSWORD)
    assert blocked.status_code == 429 and "for this email" in blocked.text


async def test_an_ipv4_mapped_address_counts_as_its_ipv4_address(app: Any) -> None:
    async with visitor(app, "198.51.100.2") as client:
        assert (await sign_up(client, "Acme", "owner@acme.test")).status_code == 303
    for i in range(10):
        address = "203.0.113.7" if i % 2 else "::ffff:203.0.113.7"
        assert (await _login(app, address, "owner@acme.test")).status_code == 401
    blocked = await _login(app, "203.0.113.7", "owner@acme.test", PASSWORD)
    assert blocked.status_code == 429 and "for this email" in blocked.text


async def test_signups_from_one_ipv6_64_are_limited_together(app: Any, rt: Services) -> None:
    for i in range(2):
        async with visitor(app, f"2001:db8:5:6::{i + 1}") as client:
            assert (await sign_up(client, f"Org {i}", f"owner@org{i}.test")).status_code == 303
    async with visitor(app, "2001:db8:5:6:ffff:ffff:ffff:ffff") as client:
        refused = await sign_up(client, "Org 2", "owner@org2.test")
    assert refused.status_code == 429 and "from this network" in refused.text
    async with rt.db.session() as session:
        assert (await session.execute(select(func.count()).select_from(Organization))).scalar_one() == 2
    async with visitor(app, "2001:db8:5:7::1") as client:
        assert (await sign_up(client, "Org 2", "owner@org2.test")).status_code == 303
