"""`add_provider` takes `default` as `POST /manage/v1/providers` does."""

from __future__ import annotations

from tests.conftest import Org
from tests.mcp.conftest import http_client, ok
from tests.support.live_server import LiveServer


async def test_add_provider_marks_the_default_as_asked(live: LiveServer, acme: Org) -> None:
    async with http_client(live, acme.key) as mcp:
        first = ok(
            await mcp.call_tool("add_provider", {"vendor": "openai", "name": "a", "api_key": "sk-a-0000"})
        )
        second = ok(
            await mcp.call_tool(
                "add_provider", {"vendor": "openai", "name": "b", "api_key": "sk-b-0000", "default": True}
            )
        )
        listed = ok(await mcp.call_tool("list_providers", {}))
    assert first["default"] is True and second["default"] is True
    assert {c["name"]: c["default"] for c in listed["data"]} == {"a": False, "b": True}
