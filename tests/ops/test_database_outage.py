"""A request that needs the database while it is down answers 503 with a retry hint, not a 500."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from modelux_server.kit.db import create_engine
from modelux_server.services import Services
from tests.conftest import Org
from tests.support.serve_process import free_port


@pytest.fixture
def pg_only(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("a server that refuses connections is a PostgreSQL outage")


async def test_a_refused_database_connection_is_a_503(
    pg_only: None, rt: Services, org: Org, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await client.get("/manage/v1/projects", headers=org.headers)).status_code == 200
    dead = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone")
    live = rt.db.sessionmaker, rt.db.read_sessionmaker
    rt.db.sessionmaker = rt.db.read_sessionmaker = async_sessionmaker(dead, expire_on_commit=False)
    try:
        r = await client.get("/manage/v1/projects", headers=org.headers)
    finally:
        rt.db.sessionmaker, rt.db.read_sessionmaker = live
        await dead.dispose()
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "service_unavailable"
    assert "Traceback" not in caplog.text
    assert any("database unavailable" in m for m in caplog.messages)
    assert (await client.get("/manage/v1/projects", headers=org.headers)).status_code == 200
