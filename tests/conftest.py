"""Shared fixtures: every database test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelux_server.app import create_app
from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from modelux_server.organization.service import create_organization
from modelux_server.services import Services
from tests.support import databases
from tests.support.fake_upstream import FakeUpstream

START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return databases.sqlite_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    if not databases.pg_available():
        if databases.IN_CI:
            pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 and CI=true")
        pytest.skip("PostgreSQL not available")
    url = databases.create_pg_database()
    yield url
    databases.drop_pg_database(url)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        return databases.sqlite_copy(sqlite_template, tmp_path)
    url: str = request.getfixturevalue("pg_url")
    databases.truncate_pg(url)
    return url


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeUpstream]:
    """A fake LLM upstream on loopback, one per test process (proxy, MCP, observability, ops)."""
    fake = FakeUpstream()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        data_dir=tmp_path / "data",
        secret_key="test-secret-key",
        public_url="https://modelux.test",
        workers_enabled=False,
        # The clock stands still in tests, so a key's minute never ends: suites that make
        # hundreds of management calls with one key would meet the default 60. The limiter
        # still runs; tests/ratelimit, tests/proxy/test_rate_limits.py and
        # tests/management/test_rate_limits.py set the real defaults or small values.
        rate_limit_management_key_per_minute=100_000,
    )


@pytest.fixture
async def app(settings: Settings, clock: FrozenClock) -> AsyncIterator[Any]:
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def rt(app: Any) -> Services:
    runtime: Services = app.state.services
    return runtime


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://modelux.test") as c:
        yield c


@dataclass
class Org:
    id: str
    key: str
    owner_email: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def make_org(rt: Services, name: str = "Acme", email: str = "owner@acme.test") -> Org:
    async with rt.db.session() as session:
        created = await create_organization(session, rt, name=name, owner_email=email)
    assert created.management_key is not None
    return Org(id=created.org.id, key=created.management_key, owner_email=email)


@pytest.fixture
async def org(rt: Services) -> Org:
    return await make_org(rt)
