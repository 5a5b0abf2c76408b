"""The login limiter counts the connection's address, which a client cannot choose,
and caps failures per address across emails."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelux_server.config import Settings
from tests.dashboard.forms import csrf_of, sign_up
from tests.support.serve_process import ServeProcess


@asynccontextmanager
async def visitor(app: Any, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://modelux.test") as client:
        yield client


async def _login(client: httpx.AsyncClient, email: str, password: str, **headers: str) -> httpx.Response:
    token = csrf_of((await client.get("/login")).text)
    return await client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}, headers=headers
    )


async def test_x_forwarded_for_does_not_change_the_limiter_key(app: Any) -> None:
    async with visitor(app, "203.0.113.7") as client:
        await sign_up(client, "Acme", "owner@acme.test")
    async with visitor(app, "203.0.113.7") as attacker:
        for i in range(10):
            r = await _login(attacker, "owner@acme.test", "guess", **{"X-Forwarded-For": f"10.9.8.{i}"})
            assert r.status_code == 401
        blocked = await _login(attacker, "owner@acme.test", "guess", **{"X-Forwarded-For": "10.9.8.200"})
        assert blocked.status_code == 429 and "for this email" in blocked.text
    # the owner, from another address, still logs in
    async with visitor(app, "198.51.100.2") as owner:
        ok = await _login(owner, "owner@acme.test", "correct horse battery")
        assert ok.status_code == 303


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.login_max_failures_per_address = 12
    return settings


async def test_many_emails_from_one_address_are_limited(app: Any) -> None:
    async with visitor(app, "203.0.113.7") as client:
        await sign_up(client, "Acme", "owner@acme.test")
    async with visitor(app, "203.0.113.7") as attacker:
        for i in range(12):
            assert (await _login(attacker, f"user{i}@acme.test", "guess")).status_code == 401
        blocked = await _login(attacker, "owner@acme.test", "correct horse battery")
        assert blocked.status_code == 429
        assert "from your network" in blocked.text and 0 < int(blocked.headers["Retry-After"]) <= 900
    async with visitor(app, "198.51.100.2") as elsewhere:
        assert (await _login(elsewhere, "owner@acme.test", "correct horse battery")).status_code == 303


def test_the_per_address_cap_defaults_to_30(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).login_max_failures_per_address == 30
    with pytest.raises(ValueError):
        Settings(data_dir=tmp_path, trusted_proxies="10.0.0.0/8, not-an-ip")
    assert Settings(data_dir=tmp_path, trusted_proxies="10.0.0.1, 192.168.0.0/16").trusted_proxy_list == [
        "10.0.0.1",
        "192.168.0.0/16",
    ]


# ---------------------------------------------------------------- the real server


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ServeProcess]:
    env = {
        "MODELUX_DATA_DIR": str(tmp_path / "data"),
        "MODELUX_SECRET_KEY": "proxy-headers-test",
        **getattr(request, "param", {}),
    }
    migrated = subprocess.run(
        [sys.executable, "-m", "modelux_server.cli", "migrate"],
        env={**os.environ, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrated.returncode == 0, migrated.stderr
    server = ServeProcess(env, tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def _failed_logins_with_forged_addresses(server: ServeProcess, n: int) -> list[int]:
    with httpx.Client(base_url=server.url) as client:
        statuses = []
        for i in range(n):
            token = csrf_of(client.get("/login").text)
            r = client.post(
                "/login",
                data={"email": "victim@acme.test", "password": "guess", "csrf_token": token},
                headers={"X-Forwarded-For": f"10.1.2.{i}"},
            )
            statuses.append(r.status_code)
        return statuses


def test_modelux_serve_ignores_x_forwarded_for_by_default(served: ServeProcess) -> None:
    # uvicorn alone would believe the header from loopback, giving each guess a fresh address
    assert _failed_logins_with_forged_addresses(served, 11) == [401] * 10 + [429]


@pytest.mark.parametrize("served", [{"MODELUX_TRUSTED_PROXIES": "127.0.0.1"}], indirect=True)
def test_modelux_serve_believes_x_forwarded_for_from_a_configured_proxy(served: ServeProcess) -> None:
    # behind a trusted proxy each forwarded address is its own client
    assert _failed_logins_with_forged_addresses(served, 11) == [401] * 11
