"""`add_provider` validates base_url exactly as `POST /manage/v1/providers` does."""

from __future__ import annotations

from tests.conftest import Org
from tests.mcp.conftest import error, http_client, ok, rest
from tests.support.live_server import LiveServer

REFUSED = {
    "file:///etc/passwd": "invalid_base_url",
    "http://u:p@8.8.8.8/v1": "invalid_base_url",
    "https://8.8.8.8/v1?x=1": "invalid_base_url",
    "https://8.8.8.8/" + "a" * 600: "invalid_base_url",
    # the MCP fixture admits 127.0.0.0/8 (its fake upstream); these stay refused
    "http://169.254.169.254/latest/meta-data": "egress_not_allowed",
    "http://10.0.0.1/v1": "egress_not_allowed",
    "http://[::1]:8080/v1": "egress_not_allowed",
}


async def test_add_provider_refuses_what_the_api_refuses_and_stores_nothing(
    live: LiveServer, acme: Org
) -> None:
    answers = {}
    async with http_client(live, acme.key) as mcp:
        for base_url in REFUSED:
            answers[base_url] = error(
                await mcp.call_tool(
                    "add_provider",
                    {
                        "vendor": "openai_compatible",
                        "name": "x",
                        "api_key": "sk-test-0000",
                        "base_url": base_url,
                    },
                )
            )
        listed = ok(await mcp.call_tool("list_providers", {}))

    assert listed["data"] == []
    async with rest(live, acme.key) as api:
        for base_url, code in REFUSED.items():
            refused = answers[base_url]
            assert refused["status"] == 422 and refused["error"]["code"] == code, refused
            assert refused["error"]["param"] == "base_url"
            body = {
                "vendor": "openai_compatible",
                "name": "x",
                "api_key": "sk-test-0000",
                "base_url": base_url,
            }
            answer = await api.post("/providers", json=body)
            assert {"status": answer.status_code, **answer.json()} == refused
