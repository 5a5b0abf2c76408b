"""MCP over streamable HTTP at /mcp, with the official client against a running server."""

from __future__ import annotations

import httpx

from tests.conftest import Org
from tests.mcp.conftest import error, http_client, key_with_role, ok, rest
from tests.support.fake_upstream import FakeUpstream
from tests.support.live_server import LiveServer

TOOLS = {
    "get_billing",
    "list_plans",
    "create_checkout_session",
    "preview_change_plan",
    "change_plan",
    "create_portal_session",
    "list_invoices",
    "list_projects",
    "create_project",
    "list_providers",
    "add_provider",
    "list_api_keys",
    "create_api_key",
}


async def test_the_tools_are_listed_with_typed_inputs_and_say_what_they_cost(
    live: LiveServer, acme: Org
) -> None:
    async with http_client(live, acme.key) as mcp:
        tools = {t.name: t for t in (await mcp.list_tools()).tools}

    assert set(tools) >= TOOLS
    change = tools["change_plan"]
    assert change.input_schema["required"] == ["plan"]
    assert change.input_schema["properties"]["interval"]["enum"] == ["monthly", "annual"]
    assert "charges the customer's card immediately" in (change.description or "")
    assert change.annotations is not None and change.annotations.destructive_hint
    project = tools["create_project"].input_schema
    assert project["required"] == ["name"]
    assert project["properties"]["name"]["maxLength"] == 200
    assert set(tools["add_provider"].input_schema["required"]) == {"vendor", "name", "api_key"}
    assert tools["get_billing"].annotations is not None and tools["get_billing"].annotations.read_only_hint


async def test_an_assistant_reads_billing_and_plans_as_the_api_answers_them(
    live: LiveServer, acme: Org
) -> None:
    async with http_client(live, acme.key) as mcp:
        billing = ok(await mcp.call_tool("get_billing", {}))
        plans = ok(await mcp.call_tool("list_plans", {}))

    async with rest(live, acme.key) as api:
        assert billing == (await api.get("/billing")).json()["data"]
        assert plans == (await api.get("/plans")).json()
    assert billing["plan"]["id"] == "free"
    assert billing["meters"]["projects"] == {"limit": 1, "used": 0, "percent": 0.0, "unlimited": False}
    assert [p["id"] for p in plans["data"]] == ["free", "pro", "team", "enterprise"]


async def test_the_second_project_on_free_is_a_402_tool_error_pointing_to_pro(
    live: LiveServer, acme: Org
) -> None:
    async with http_client(live, acme.key) as mcp:
        project = ok(await mcp.call_tool("create_project", {"name": "assistant-made"}))
        refused = error(await mcp.call_tool("create_project", {"name": "one too many"}))
        listed = ok(await mcp.call_tool("list_projects", {}))

    assert project["object"] == "project" and project["id"].startswith("proj_")
    assert listed == {"data": [project], "next_cursor": None, "has_more": False}
    assert refused["status"] == 402
    assert refused["error"]["type"] == "plan_limit_exceeded"
    assert refused["error"]["code"] == "resource_limit_reached"
    assert refused["error"]["limit"] == {"name": "projects", "limit": 1, "used": 1}
    assert refused["error"]["plan"] == "free"
    assert refused["error"]["upgrade"] == {
        "plan": "pro",
        "url": "https://modelux.test/settings/billing?plan=pro",
    }
    async with rest(live, acme.key) as api:
        answer = await api.post("/projects", json={"name": "one too many"})
    assert answer.status_code == 402
    assert {"status": 402, **answer.json()} == refused


async def test_keys_and_credentials_are_created_through_tools(live: LiveServer, acme: Org) -> None:
    async with http_client(live, acme.key) as mcp:
        project = ok(await mcp.call_tool("create_project", {"name": "app"}))
        key = ok(await mcp.call_tool("create_api_key", {"project_id": project["id"], "name": "ci"}))
        provider = ok(
            await mcp.call_tool(
                "add_provider", {"vendor": "openai", "name": "prod", "api_key": "sk-test-abcd1234"}
            )
        )
        keys = ok(await mcp.call_tool("list_api_keys", {"project_id": project["id"]}))
        providers = ok(await mcp.call_tool("list_providers", {"limit": 10}))
        unknown = error(
            await mcp.call_tool("add_provider", {"vendor": "acme", "name": "x", "api_key": "sk-x"})
        )
        missing = error(await mcp.call_tool("create_api_key", {"project_id": "proj_nope"}))

    assert key["key"].startswith("mlx_sk_")
    assert [k["id"] for k in keys["data"]] == [key["id"]] and "key" not in keys["data"][0]
    assert provider["hint"].endswith("1234") and "sk-test-abcd1234" not in str(providers)
    assert [p["id"] for p in providers["data"]] == [provider["id"]]
    assert unknown["status"] == 422 and unknown["error"]["code"] == "unknown_vendor"
    assert missing["status"] == 404 and missing["error"]["type"] == "not_found_error"


async def test_bad_arguments_get_the_apis_422_body(live: LiveServer, acme: Org) -> None:
    async with http_client(live, acme.key) as mcp:
        interval = error(await mcp.call_tool("change_plan", {"plan": "pro", "interval": "weekly"}))
        missing = error(await mcp.call_tool("create_project", {}))
        extra = error(await mcp.call_tool("create_project", {"name": "x", "colour": "red"}))

    assert interval["status"] == 422
    assert interval["error"]["code"] == "invalid_field" and interval["error"]["param"] == "interval"
    assert missing["error"] == {
        "type": "invalid_request_error",
        "code": "missing_field",
        "message": "name: Field required",
        "param": "name",
    }
    assert extra["status"] == 422 and extra["error"]["code"] == "unknown_field"
    assert extra["error"]["param"] == "colour"


async def test_nul_in_any_argument_is_the_apis_422_on_both_databases(live: LiveServer, acme: Org) -> None:
    async with http_client(live, acme.key) as mcp:
        name = error(await mcp.call_tool("create_project", {"name": "p\x00"}))
        cursor = error(await mcp.call_tool("list_projects", {"cursor": "proj_\x00"}))
        project = error(await mcp.call_tool("create_api_key", {"project_id": "proj_\x00"}))
        listed = ok(await mcp.call_tool("list_projects", {}))

    assert name == {
        "status": 422,
        "error": {
            "type": "invalid_request_error",
            "code": "invalid_characters",
            "message": "name: must not contain NUL characters",
            "param": "name",
        },
    }
    assert (cursor["status"], cursor["error"]["param"]) == (422, "cursor")
    assert (project["status"], project["error"]["param"]) == (422, "project_id")
    assert listed["data"] == []


async def test_a_member_key_reads_but_cannot_change_the_plan_or_create(live: LiveServer, acme: Org) -> None:
    member = await key_with_role(live, acme, "member")
    async with http_client(live, member) as mcp:
        billing = ok(await mcp.call_tool("get_billing", {}))
        change = error(await mcp.call_tool("change_plan", {"plan": "pro"}))
        checkout = error(await mcp.call_tool("create_checkout_session", {"plan": "pro"}))
        create = error(await mcp.call_tool("create_project", {"name": "nope"}))

    assert billing["plan"]["id"] == "free"
    for refused in (change, checkout, create):
        assert refused["status"] == 403
        assert refused["error"]["type"] == "permission_error"
        assert refused["error"]["code"] == "role_not_allowed"
        assert refused["error"]["required_role"] == "admin"
    async with rest(live, member) as api:
        assert {"status": 403, **(await api.post("/projects", json={"name": "nope"})).json()} == create


async def test_without_stripe_checkout_and_paid_plan_changes_are_the_409(live: LiveServer, acme: Org) -> None:
    async with http_client(live, acme.key) as mcp:
        checkout = error(
            await mcp.call_tool("create_checkout_session", {"plan": "pro", "interval": "annual"})
        )
        change = error(await mcp.call_tool("change_plan", {"plan": "team"}))
        portal = error(await mcp.call_tool("create_portal_session", {}))
        billing = ok(await mcp.call_tool("get_billing", {}))

    for refused in (checkout, change, portal):
        assert refused["status"] == 409
        assert refused["error"]["code"] == "billing_not_configured"
        assert "manual mode" in refused["error"]["message"]
    assert billing["plan"]["id"] == "free" and billing["billing_mode"] == "manual"


async def test_a_missing_or_bad_key_is_refused_with_401(live: LiveServer, acme: Org) -> None:
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    accept = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(base_url=live.url) as http:
        missing = await http.post("/mcp", json=initialize, headers=accept)
        bad = await http.post(
            "/mcp", json=initialize, headers={**accept, "Authorization": "Bearer mlx_mk_not-a-key"}
        )
        project_key = await http.post(
            "/mcp", json=initialize, headers={**accept, "Authorization": "Bearer mlx_sk_x"}
        )
        good = await http.post("/mcp", json=initialize, headers={**accept, **acme.headers})

    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_api_key"
    assert missing.headers["www-authenticate"] == "Bearer"
    assert bad.status_code == 401
    assert bad.json()["error"] == {
        "type": "authentication_error",
        "code": "invalid_api_key",
        "message": "Invalid or revoked management key.",
    }
    assert project_key.status_code == 401
    assert good.status_code == 200


async def test_mcp_calls_never_count_toward_monthly_requests(
    live: LiveServer, acme: Org, upstream: FakeUpstream
) -> None:
    async with http_client(live, acme.key) as mcp:
        ok(
            await mcp.call_tool(
                "add_provider",
                {
                    "vendor": "openai",
                    "name": "up",
                    "api_key": "sk-test-0000",
                    "base_url": f"{upstream.url}/v1",
                },
            )
        )
        project = ok(await mcp.call_tool("create_project", {"name": "app"}))
        key = ok(await mcp.call_tool("create_api_key", {"project_id": project["id"]}))["key"]
        # one proxy request, which does count: the meter read below is live
        async with httpx.AsyncClient(base_url=live.url) as http:
            answer = await http.post(
                "/v1/chat/completions",
                json={"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]},
                headers={"Authorization": f"Bearer {key}"},
            )
        assert answer.status_code == 200, answer.text
        for _ in range(10):
            ok(await mcp.call_tool("get_billing", {}))
            ok(await mcp.call_tool("list_projects", {}))
            error(await mcp.call_tool("change_plan", {"plan": "pro"}))
        billing = ok(await mcp.call_tool("get_billing", {}))

    assert billing["meters"]["monthly_requests"]["used"] == 1
    assert billing["meters"]["monthly_requests"]["limit"] == 10_000
