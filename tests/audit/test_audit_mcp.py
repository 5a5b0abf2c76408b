"""The audit log and the access review through MCP: the same answers and the same 402s as the
management API, over streamable HTTP (both databases) and the stdio bridge."""

from __future__ import annotations

import pytest

from modelux_server.billing.operator import create_enterprise_plan
from modelux_server.services import Services
from tests.conftest import Org
from tests.mcp.conftest import error, http_client, key_with_role, ok, rest, stdio_client
from tests.support.live_server import LiveServer
from tests.support.plans import move_to


async def _plan(live: LiveServer, org: Org, plan: str) -> None:
    if plan == "enterprise":

        async def give(rt: Services) -> None:
            async with rt.db.session() as session:
                await create_enterprise_plan(
                    session, rt, org.id, name="Acme Enterprise", limits={}, features=[]
                )

        await live.acall(give)
    elif plan != "free":
        await live.acall(move_to(live.runtime, org.id, plan))


async def test_list_audit_events_on_free_and_pro_is_a_402_pointing_at_team(
    live: LiveServer, acme: Org
) -> None:
    for plan in ("free", "pro"):
        await _plan(live, acme, plan)
        async with http_client(live, acme.key) as mcp:
            refused = error(await mcp.call_tool("list_audit_events", {}))
        async with rest(live, acme.key) as api:
            assert refused == {"status": 402, **(await api.get("/audit-log")).json()}
        assert (
            refused["error"]["code"] == "feature_not_in_plan" and refused["error"]["feature"] == "audit_log"
        )
        assert refused["error"]["plan"] == plan and refused["error"]["upgrade"]["plan"] == "team"


async def test_list_audit_events_answers_what_the_endpoint_answers(live: LiveServer, acme: Org) -> None:
    await _plan(live, acme, "team")
    async with rest(live, acme.key) as api:
        for name in ("one", "two", "three"):
            assert (await api.post("/projects", json={"name": name})).status_code == 201
        expected_all = (await api.get("/audit-log")).json()
        expected_page = (await api.get("/audit-log", params={"action": "project.", "limit": 2})).json()
    async with http_client(live, acme.key) as mcp:
        everything = ok(await mcp.call_tool("list_audit_events", {}))
        page = ok(await mcp.call_tool("list_audit_events", {"action": "project.", "limit": 2}))
        rest_of = ok(
            await mcp.call_tool(
                "list_audit_events", {"action": "project.", "limit": 2, "cursor": page["next_cursor"]}
            )
        )
        bad = error(await mcp.call_tool("list_audit_events", {"since": "last week"}))
    assert everything == expected_all
    assert [e["action"] for e in everything["data"]][:4] == ["project.created"] * 3 + ["plan.changed"]
    assert page == expected_page and page["has_more"] is True
    assert [e["target"]["type"] for e in page["data"] + rest_of["data"]] == ["project"] * 3
    assert bad["status"] == 422 and bad["error"]["param"] == "since"


@pytest.mark.parametrize("plan", ["free", "pro", "team"])
async def test_export_access_review_below_enterprise_is_a_402_pointing_at_enterprise(
    live: LiveServer, acme: Org, plan: str
) -> None:
    await _plan(live, acme, plan)
    async with http_client(live, acme.key) as mcp:
        refused = error(await mcp.call_tool("export_access_review", {}))
    async with rest(live, acme.key) as api:
        assert refused == {"status": 402, **(await api.get("/access-review")).json()}
    assert refused["error"]["code"] == "feature_not_in_plan"
    assert refused["error"]["feature"] == "access_review_export"
    assert refused["error"]["upgrade"]["plan"] == "enterprise"


async def test_export_access_review_answers_the_review_and_is_recorded_as_from_mcp(
    live: LiveServer, acme: Org
) -> None:
    await _plan(live, acme, "enterprise")
    member = await key_with_role(live, acme, "member")
    async with http_client(live, acme.key) as mcp:
        review = ok(await mcp.call_tool("export_access_review", {}))
    async with http_client(live, member) as mcp:
        forbidden = error(await mcp.call_tool("export_access_review", {}))
    async with rest(live, acme.key) as api:
        assert review == (await api.get("/access-review")).json()["data"]
        events = (await api.get("/audit-log", params={"action": "access_review.exported"})).json()["data"]
    assert review["object"] == "access_review" and review["sso"] == {"status": "not_configured"}
    assert [k["name"] for k in review["management_keys"]] == ["bootstrap", "member"]
    assert forbidden["status"] == 403
    assert [e["actor"]["source"] for e in events] == ["api", "mcp"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_stdio_bridge_forwards_both_tools(live: LiveServer, acme: Org) -> None:
    await _plan(live, acme, "pro")
    async with stdio_client(live, acme.key) as bridge:
        locked = error(await bridge.call_tool("list_audit_events", {"action": "project."}))
    assert locked["status"] == 402 and locked["error"]["upgrade"]["plan"] == "team"
    await _plan(live, acme, "enterprise")
    async with stdio_client(live, acme.key) as bridge:
        events = ok(await bridge.call_tool("list_audit_events", {"action": "plan."}))
        review = ok(await bridge.call_tool("export_access_review", {}))
    assert [e["changes"]["plan"]["to"] for e in events["data"]] == ["enterprise", "pro"]
    assert [m["email"] for m in review["members"]] == [acme.owner_email]
