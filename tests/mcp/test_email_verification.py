"""`add_provider` waits for a confirmed owner email exactly as `POST /manage/v1/providers` does."""

from __future__ import annotations

import pytest

from modelux_server.config import Settings
from tests.conftest import Org
from tests.mcp.conftest import error, http_client, ok, rest
from tests.support.live_server import LiveServer

PROVIDER = {"vendor": "openai", "name": "prod", "api_key": "sk-test-abcd1234"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.require_email_verification = True
    return settings


async def test_add_provider_is_refused_until_an_owner_confirmed_their_email(
    live: LiveServer, acme: Org
) -> None:
    async with http_client(live, acme.key) as mcp:
        refused = error(await mcp.call_tool("add_provider", PROVIDER))
        listed = ok(await mcp.call_tool("list_providers", {"limit": 10}))
    assert refused["status"] == 403
    assert (refused["error"]["type"], refused["error"]["code"]) == ("permission_error", "email_not_verified")
    assert listed["data"] == []
    async with rest(live, acme.key) as api:
        answer = await api.post("/providers", json=PROVIDER)
    assert answer.status_code == 403 and {"status": 403, **answer.json()} == refused
