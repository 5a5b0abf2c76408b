"""What an operator exposes without meaning to: files on disk, /metrics, /mcp's GET, headers."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import httpx
import pytest

from modelux_server.app import create_app
from modelux_server.config import Settings
from modelux_server.kit.migrations import upgrade
from modelux_server.notifications.mailer import OutboxMailer
from tests.conftest import Org


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_embedded_data_dir_and_its_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, which would leave files world-readable
    try:
        data = tmp_path / "fresh" / ".modelux"
        settings = Settings(data_dir=data, public_url="http://localhost:8080", workers_enabled=False)
        await asyncio.to_thread(upgrade, settings.resolved_database_url)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await client.get("/healthz")).status_code == 200
                assert (await client.get("/manage/v1/plans")).status_code == 200
            outbox = OutboxMailer(settings.resolved_outbox_dir)
            from email.message import EmailMessage

            message = EmailMessage()
            message["To"], message["Subject"], message["Message-ID"] = "a@b.test", "hi", "<m1@modelux>"
            message.set_content("hello")
            await outbox.send(message)
        db = data / "modelux.db"
        files = [db, data / "secret.key", *settings.resolved_outbox_dir.iterdir()]
        files += [p for p in (data / "modelux.db-wal", data / "modelux.db-shm") if p.exists()]
        assert _mode(data) == 0o700 and _mode(settings.resolved_outbox_dir) == 0o700
        assert _mode(data.parent) == 0o700  # created by us as well
        for path in files:
            assert _mode(path) == 0o600, (path, oct(_mode(path)))
    finally:
        os.umask(old)


def test_an_existing_folder_chosen_by_the_operator_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    settings = Settings(data_dir=shared, database_url=f"sqlite:///{shared}/x.db")
    upgrade(settings.resolved_database_url)
    assert _mode(shared) == 0o755
    assert _mode(shared / "x.db") == 0o600


async def test_mcp_answers_405_to_get_instead_of_holding_a_stream(
    client: httpx.AsyncClient, org: Org
) -> None:
    for headers in (org.headers, {}):
        r = await client.get("/mcp", headers={**headers, "accept": "text/event-stream"})
        assert r.status_code == 405
        assert r.headers["allow"] == "POST"
        assert r.json()["error"]["code"] == "method_not_allowed"
    r = await client.delete("/mcp", headers=org.headers)
    assert r.status_code == 405


async def _metrics(settings: Settings, headers: dict[str, str] | None = None) -> httpx.Response:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/metrics", headers=headers or {})


@pytest.mark.parametrize(
    ("extra", "headers", "status"),
    [
        ({}, None, 200),  # development default: served
        ({"env": "production", "secret_key": "k"}, None, 404),  # production default: off
        ({"metrics_enabled": False}, None, 404),
        ({"metrics_token": "scrape-me"}, None, 401),
        ({"metrics_token": "scrape-me"}, {"Authorization": "Bearer wrong"}, 401),
        ({"metrics_token": "scrape-me"}, {"Authorization": "Bearer scrape-me"}, 200),
        ({"env": "production", "secret_key": "k", "metrics_token": "t"}, {"Authorization": "Bearer t"}, 200),
    ],
)
async def test_metrics_are_served_only_as_configured(
    settings: Settings, extra: dict[str, object], headers: dict[str, str] | None, status: int
) -> None:
    r = await _metrics(settings.model_copy(update=extra), headers)
    assert r.status_code == status, r.text
    if status == 200:
        assert b"modelux_" in r.content
    else:
        assert r.json()["error"]["type"] in ("authentication_error", "not_found_error")


async def test_every_answer_says_nosniff_and_keeps_the_referrer_home(
    client: httpx.AsyncClient, org: Org
) -> None:
    answers = [
        await client.get("/manage/v1/projects", headers=org.headers),
        await client.get("/manage/v1/projects"),
        await client.post("/v1/chat/completions", json={}),
        await client.get("/login"),
        await client.get("/no/such/page"),
        await client.get("/healthz"),
    ]
    for r in answers:
        assert r.headers["x-content-type-options"] == "nosniff", r.request.url
        assert r.headers["referrer-policy"] == "same-origin", r.request.url
