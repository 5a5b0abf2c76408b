"""Caches on the proxy path are dropped after the change commits, never before."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from modelux_server.api_key import service as api_keys
from modelux_server.auth.principal import Principal
from modelux_server.config import Settings
from modelux_server.services import Services
from tests.conftest import Org
from tests.support.fake_upstream import FakeUpstream

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"egress_allow": "127.0.0.0/8"})


async def test_a_revoked_key_is_refused_on_the_very_next_request(
    client: httpx.AsyncClient, rt: Services, org: Org, upstream: FakeUpstream
) -> None:
    h = org.headers
    project = (await client.post("/manage/v1/projects", json={"name": "p"}, headers=h)).json()["data"]["id"]
    made = (await client.post("/manage/v1/api-keys", json={"project_id": project}, headers=h)).json()["data"]
    r = await client.post(
        "/manage/v1/providers",
        json={"vendor": "openai", "name": "o", "api_key": "sk-test-1", "base_url": f"{upstream.url}/v1"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    key = {"Authorization": f"Bearer {made['key']}"}
    assert (await client.post("/v1/chat/completions", json=CHAT, headers=key)).status_code == 200

    async with rt.db.session() as session:
        await api_keys.revoke(session, rt, Principal(org.id, "admin", "test"), made["id"])
        # A call that lands while the revocation is not committed still reads the
        # key as valid, and caches it. Dropping the cache before the commit (as the
        # revocation used to) leaves that stale copy in place after the commit.
        during = await client.post("/v1/chat/completions", json=CHAT, headers=key)
        assert during.status_code == 200
    after = await client.post("/v1/chat/completions", json=CHAT, headers=key)
    assert after.status_code == 401, after.text
    assert after.json()["error"]["type"] == "authentication_error"
