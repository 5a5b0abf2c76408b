"""When keys were last used, on SQLite and PostgreSQL: noted by the proxy and the management API
in memory, written by one background statement per kind of key, never by the request, and
only ever moved forward."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import event, select

from modelux_server.app import create_app
from modelux_server.auth import repository
from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from modelux_server.kit.db import Database
from modelux_server.models import ApiKey, ManagementKey
from modelux_server.services import Services
from tests.conftest import START, make_org
from tests.proxy.conftest import Tenant, make_tenant
from tests.support.fake_upstream import FakeUpstream
from tests.support.live_server import LiveServer

MSG = [{"role": "user", "content": "hi"}]


class Statements:
    """The statements the server's write engine runs that write `last_used_at`."""

    def __init__(self, rt: Services) -> None:
        self.seen: list[str] = []
        event.listen(rt.db.engine.sync_engine, "before_cursor_execute", self._on)

    def _on(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "last_used_at" in statement and statement.lstrip().upper().startswith("UPDATE"):
            self.seen.append(statement)


def stored(live: LiveServer, model: Any, key_id: str) -> datetime | None:
    async def read(rt: Services) -> datetime | None:
        async with rt.db.session() as session:
            found: datetime | None = await session.scalar(
                select(model.last_used_at).where(model.id == key_id)
            )
            return found

    return live.call(read)


def chat(tenant: Tenant) -> None:
    r = httpx.post(
        f"{tenant.base}/v1/chat/completions",
        json={"model": "gpt-fake", "messages": MSG},
        headers={"Authorization": f"Bearer {tenant.key}"},
        timeout=20,
    )
    assert r.status_code == 200, r.text


def test_uses_are_written_once_per_flush_not_per_request(
    live: LiveServer, upstream: FakeUpstream, clock: FrozenClock
) -> None:
    tenant = make_tenant(live, upstream)
    rt = live.runtime
    notebook = rt.last_used
    assert notebook is not None
    with tenant.manage() as manage:
        key_id = manage.get("/api-keys").json()["data"][0]["id"]
        mk_id = manage.get("/management-keys").json()["data"][0]["id"]
    live.call(notebook.flush())  # what setting the tenant up noted
    writes = Statements(rt)

    clock.advance(timedelta(minutes=3))
    for _ in range(20):
        chat(tenant)
    with tenant.manage() as manage:
        for _ in range(5):
            assert manage.get("/projects").status_code == 200
    # 25 requests, no write: the uses wait in memory
    assert writes.seen == []
    assert stored(live, ApiKey, key_id) is None
    assert stored(live, ManagementKey, mk_id) == START
    assert notebook.pending("api_key") == {key_id: clock.now()}
    assert notebook.pending("management_key") == {mk_id: clock.now()}

    live.call(notebook.flush())
    # one statement per kind of key, whatever the number of requests
    assert len(writes.seen) == 2
    assert stored(live, ApiKey, key_id) == clock.now()
    assert stored(live, ManagementKey, mk_id) == clock.now()
    assert notebook.pending("api_key") == {} and notebook.pending("management_key") == {}
    live.call(notebook.flush())
    assert len(writes.seen) == 2  # nothing noted, nothing written


def test_a_late_flush_never_moves_last_used_back(
    live: LiveServer, upstream: FakeUpstream, clock: FrozenClock
) -> None:
    """Another process flushing an older use after a newer one was written changes nothing."""
    tenant = make_tenant(live, upstream)
    rt = live.runtime
    assert rt.last_used is not None
    with tenant.manage() as manage:
        key_id = manage.get("/api-keys").json()["data"][0]["id"]
    clock.advance(timedelta(minutes=10))
    chat(tenant)
    live.call(rt.last_used.flush())
    newest = clock.now()

    async def older_process(rt: Services) -> None:
        async with rt.db.session() as session:
            await repository.stamp_last_used(session, "api_key", {key_id: newest - timedelta(minutes=5)})

    live.call(older_process)
    assert stored(live, ApiKey, key_id) == newest

    async def newer_process(rt: Services) -> None:
        async with rt.db.session() as session:
            await repository.stamp_last_used(session, "api_key", {key_id: newest + timedelta(minutes=1)})

    live.call(newer_process)
    assert stored(live, ApiKey, key_id) == newest + timedelta(minutes=1)


def test_an_unknown_or_revoked_key_is_not_noted(live: LiveServer, upstream: FakeUpstream) -> None:
    tenant = make_tenant(live, upstream)
    rt = live.runtime
    assert rt.last_used is not None
    live.call(rt.last_used.flush())
    with tenant.manage() as manage:
        key_id = manage.get("/api-keys").json()["data"][0]["id"]
        assert manage.delete(f"/api-keys/{key_id}").status_code == 200
    live.call(rt.last_used.flush())
    for token in (tenant.key, "mlx_sk_" + "x" * 40):
        r = httpx.post(
            f"{tenant.base}/v1/chat/completions",
            json={"model": "gpt-fake", "messages": MSG},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 401
    assert rt.last_used.pending("api_key") == {}


async def test_a_clean_shutdown_writes_the_uses_still_in_memory(
    settings: Settings, clock: FrozenClock
) -> None:
    app = create_app(settings, clock=clock)
    rt: Services = app.state.services
    async with app.router.lifespan_context(app):
        org = await make_org(rt)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://modelux.test") as client:
            clock.advance(timedelta(minutes=2))
            keys = (await client.get("/manage/v1/management-keys", headers=org.headers)).json()["data"]
        mk_id = keys[0]["id"]
    # the app has stopped: read with a connection of our own
    db = Database(settings.resolved_database_url)
    try:
        async with db.session() as session:
            written = await session.scalar(
                select(ManagementKey.last_used_at).where(ManagementKey.id == mk_id)
            )
    finally:
        await db.dispose()
    assert written == START + timedelta(minutes=2)
