"""Proxy fixtures: a fake upstream, the app on a real port, an org wired to the fake."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from modelux_server.billing.operator import create_enterprise_plan
from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from modelux_server.organization.service import create_organization
from tests.support.fake_upstream import FakeUpstream
from tests.support.live_server import LiveServer
from tests.support.redis import redis_url_or_skip


@pytest.fixture(params=["local", "redis"])
def counter_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def proxy_settings(settings: Settings, counter_backend: str) -> Settings:
    update: dict[str, Any] = {
        "counter_reserve_block": 8,
        "counter_reserve_block_max": 64,
        # the fake upstream listens on loopback, which the default egress policy refuses
        "egress_allow": "127.0.0.0/8",
    }
    if counter_backend == "redis":
        update["redis_url"] = redis_url_or_skip()
    return settings.model_copy(update=update)


@pytest.fixture
def live(proxy_settings: Settings, clock: FrozenClock) -> Iterator[LiveServer]:
    server = LiveServer(proxy_settings, clock=clock).start()
    yield server
    server.stop()


@dataclass
class Tenant:
    org_id: str
    mk: str
    project_id: str
    key: str
    base: str

    def manage(self) -> httpx.Client:
        return httpx.Client(base_url=f"{self.base}/manage/v1", headers={"Authorization": f"Bearer {self.mk}"})

    def billing(self) -> dict[str, Any]:
        with self.manage() as c:
            data: dict[str, Any] = c.get("/billing").json()["data"]
            return data


def make_tenant(live: LiveServer, upstream: FakeUpstream, *, monthly_requests: int | None = None) -> Tenant:
    rt = live.runtime

    async def create() -> tuple[str, str]:
        async with rt.db.session() as session:
            made = await create_organization(session, rt, name="Acme", owner_email="owner@acme.test")
            if monthly_requests is not None:
                await create_enterprise_plan(
                    session,
                    rt,
                    made.org.id,
                    name="Test",
                    limits={
                        "monthly_requests": monthly_requests,
                        "projects": 5,
                        "api_keys": 5,
                        "provider_credentials": 5,
                    },
                    features=["ensembles", "custom_routing_rules"],
                )
        assert made.management_key
        return made.org.id, made.management_key

    org_id, mk = live.call(create())
    with httpx.Client(base_url=f"{live.url}/manage/v1", headers={"Authorization": f"Bearer {mk}"}) as c:
        project = c.post("/projects", json={"name": "app"}).json()["data"]["id"]
        key = c.post("/api-keys", json={"project_id": project, "name": "k"}).json()["data"]["key"]
        for vendor, base in (("openai", f"{upstream.url}/v1"), ("anthropic", upstream.url)):
            r = c.post(
                "/providers",
                json={
                    "vendor": vendor,
                    "name": vendor,
                    "api_key": f"sk-{vendor}-test-0000",
                    "base_url": base,
                },
            )
            assert r.status_code == 201, r.text
    return Tenant(org_id, mk, project, key, live.url)


@pytest.fixture
def tenant(live: LiveServer, upstream: FakeUpstream) -> Tenant:
    return make_tenant(live, upstream)
