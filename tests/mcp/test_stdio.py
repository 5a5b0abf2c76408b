"""`modelux mcp`: the stdio bridge, spawned by the official client, against a running server.

The bridge holds no database (it forwards to the management API), so these
run on one database; the HTTP tests cover both.
"""

from __future__ import annotations

import pytest

from tests.conftest import Org
from tests.mcp.conftest import error, http_client, key_with_role, ok, rest, stdio_client
from tests.mcp.test_http import TOOLS
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


async def test_the_bridge_answers_what_the_server_answers(live: LiveServer, acme: Org) -> None:
    async with stdio_client(live, acme.key) as bridge:
        listed = {t.name: t for t in (await bridge.list_tools()).tools}
        billing = ok(await bridge.call_tool("get_billing", {}))
        plans = ok(await bridge.call_tool("list_plans", {}))
        project = ok(await bridge.call_tool("create_project", {"name": "from the desktop"}))
        refused = error(await bridge.call_tool("create_project", {"name": "one too many"}))
        projects = ok(await bridge.call_tool("list_projects", {"limit": 5}))
        checkout = error(await bridge.call_tool("create_checkout_session", {"plan": "pro"}))
        bad_argument = error(await bridge.call_tool("change_plan", {"plan": "pro", "interval": "weekly"}))
    async with http_client(live, acme.key) as mcp:
        over_http = {t.name: t for t in (await mcp.list_tools()).tools}
        refused_over_http = error(await mcp.call_tool("create_project", {"name": "one too many"}))

    assert set(listed) == set(over_http) and set(listed) >= TOOLS
    assert listed["change_plan"].input_schema == over_http["change_plan"].input_schema
    async with rest(live, acme.key) as api:
        assert plans == (await api.get("/plans")).json()
        assert projects == (await api.get("/projects", params={"limit": 5})).json()
    assert billing["plan"]["id"] == "free" and billing["meters"]["projects"]["used"] == 0
    assert projects["data"] == [project]
    assert refused == refused_over_http
    assert refused["status"] == 402 and refused["error"]["upgrade"]["plan"] == "pro"
    # forwarded to POST /manage/v1/billing/checkout, which in manual mode is a 409
    assert checkout["status"] == 409 and checkout["error"]["code"] == "billing_not_configured"
    assert bad_argument["status"] == 422 and bad_argument["error"]["param"] == "interval"


async def test_the_bridge_configured_from_the_environment_passes_on_401_and_403(
    live: LiveServer, acme: Org
) -> None:
    member = await key_with_role(live, acme, "member")
    async with stdio_client(live, "mlx_mk_revoked-or-wrong", via_env=True) as bridge:
        unauthorized = error(await bridge.call_tool("get_billing", {}))
    async with stdio_client(live, member, via_env=True) as bridge:
        forbidden = error(await bridge.call_tool("create_project", {"name": "nope"}))
        readable = ok(await bridge.call_tool("get_billing", {}))

    assert unauthorized == {
        "status": 401,
        "error": {
            "type": "authentication_error",
            "code": "invalid_api_key",
            "message": "Invalid or revoked management key.",
        },
    }
    assert forbidden["status"] == 403 and forbidden["error"]["required_role"] == "admin"
    assert readable["plan"]["id"] == "free"
