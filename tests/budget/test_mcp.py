"""The budget tools, through the official `mcp` client: they answer what the endpoints answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from tests.conftest import Org, make_org
from tests.mcp.conftest import error, http_client, key_with_role, ok, rest, stdio_client
from tests.support.live_server import LiveServer

CAP = {"name": "org cap", "scope": "organization", "amount_usd": 250, "period": "monthly"}


@pytest.fixture
def live(settings: Settings, clock: FrozenClock) -> Iterator[LiveServer]:
    server = LiveServer(settings, clock=clock).start()
    yield server
    server.stop()


@pytest.fixture
def acme(live: LiveServer) -> Org:
    org: Org = live.call(make_org(live.runtime))
    return org


async def test_the_tools_are_listed_with_the_bodies_schemas(live: LiveServer, acme: Org) -> None:
    async with http_client(live, acme.key) as mcp:
        tools = {t.name: t for t in (await mcp.list_tools()).tools}
    create = tools["create_budget"].input_schema
    assert set(create["required"]) == {"name", "scope", "amount_usd", "period"}
    assert create["properties"]["amount_usd"]["type"] == "number"
    assert create["properties"]["scope"]["enum"] == ["organization", "project", "api_key"]
    assert tools["update_budget"].input_schema["required"] == ["budget_id"]
    assert (
        tools["delete_budget"].annotations is not None and tools["delete_budget"].annotations.destructive_hint
    )
    assert tools["list_budgets"].annotations is not None and tools["list_budgets"].annotations.read_only_hint


async def test_create_list_update_delete_answer_what_the_api_answers(live: LiveServer, acme: Org) -> None:
    async with http_client(live, acme.key) as mcp:
        created = ok(await mcp.call_tool("create_budget", CAP))
        updated = ok(
            await mcp.call_tool(
                "update_budget", {"budget_id": created["id"], "amount_usd": 12.5, "thresholds": [25, 100]}
            )
        )
        listed = ok(await mcp.call_tool("list_budgets", {"limit": 5}))
        async with rest(live, acme.key) as api:
            assert updated == (await api.get(f"/budgets/{created['id']}")).json()["data"]
            assert listed == (await api.get("/budgets", params={"limit": 5})).json()
        deleted = ok(await mcp.call_tool("delete_budget", {"budget_id": created["id"]}))
        gone = error(await mcp.call_tool("delete_budget", {"budget_id": created["id"]}))

    assert created["scope_id"] == acme.id and created["amount_usd"] == 250
    assert updated["amount_usd"] == 12.5 and updated["thresholds"] == [25, 100]
    assert listed["data"] == [updated] and listed["has_more"] is False
    assert deleted == {**updated, "deleted": True}
    async with rest(live, acme.key) as api:
        assert {"status": 404, **(await api.delete(f"/budgets/{created['id']}")).json()} == gone


REFUSED: list[dict[str, Any]] = [
    {**CAP, "amount_usd": "250"},  # a string for a number
    {**CAP, "amount_usd": 0.0000001},
    {**CAP, "amount_usd": 2e9},
    {**CAP, "thresholds": [80, 50]},
    {**CAP, "thresholds": [0]},
    {**CAP, "scope": "project"},  # no scope_id
    {**CAP, "scope": "project", "scope_id": "proj_nope"},
    {**CAP, "name": "a\x00b"},
    {**CAP, "period": "yearly"},
]


async def test_refusals_are_the_apis_errors_and_store_nothing(live: LiveServer, acme: Org) -> None:
    other: Org = await live.acall(make_org(live.runtime, "Globex", "owner@globex.test"))
    async with rest(live, other.key) as api:
        theirs = (await api.post("/budgets", json=CAP)).json()["data"]
        their_project = (await api.post("/projects", json={"name": "theirs"})).json()["data"]
    answers = []
    async with http_client(live, acme.key) as mcp:
        for args in REFUSED:
            answers.append(error(await mcp.call_tool("create_budget", args)))
        stolen = error(
            await mcp.call_tool("create_budget", {**CAP, "scope": "project", "scope_id": their_project["id"]})
        )
        foreign = error(await mcp.call_tool("update_budget", {"budget_id": theirs["id"], "amount_usd": 1}))
        listed = ok(await mcp.call_tool("list_budgets", {}))
    assert listed["data"] == []
    assert stolen["status"] == 404 and stolen["error"]["param"] == "scope_id"
    assert foreign["status"] == 404 and foreign["error"]["code"] == "budget_not_found"
    async with rest(live, acme.key) as api:
        for args, answer in zip(REFUSED, answers, strict=True):
            expected = await api.post("/budgets", json=args)
            assert expected.status_code in (404, 422), args
            assert answer == {"status": expected.status_code, **expected.json()}, args


async def test_a_member_key_reads_but_cannot_change(live: LiveServer, acme: Org) -> None:
    member = await key_with_role(live, acme, "member")
    async with rest(live, acme.key) as api:
        budget = (await api.post("/budgets", json=CAP)).json()["data"]
    async with http_client(live, member) as mcp:
        listed = ok(await mcp.call_tool("list_budgets", {}))
        refused = [
            error(await mcp.call_tool("create_budget", {**CAP, "name": "mine"})),
            error(await mcp.call_tool("update_budget", {"budget_id": budget["id"], "name": "x"})),
            error(await mcp.call_tool("delete_budget", {"budget_id": budget["id"]})),
        ]
    assert [b["id"] for b in listed["data"]] == [budget["id"]]
    assert {(r["status"], r["error"]["code"]) for r in refused} == {(403, "role_not_allowed")}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_stdio_bridge_fills_the_budget_id_into_the_path(live: LiveServer, acme: Org) -> None:
    async with rest(live, acme.key) as api:
        project = (await api.post("/projects", json={"name": "keep"})).json()["data"]
    async with stdio_client(live, acme.key) as bridge:
        created = ok(await bridge.call_tool("create_budget", {**CAP, "amount_usd": 0.000001}))
        updated = ok(await bridge.call_tool("update_budget", {"budget_id": created["id"], "action": "alert"}))
        missing = error(await bridge.call_tool("update_budget", {"budget_id": "bud_nope", "action": "alert"}))
        # an id is one path segment, escaped: it cannot reach another resource
        escaped = error(
            await bridge.call_tool("delete_budget", {"budget_id": f"../projects/{project['id']}"})
        )
        deleted = ok(await bridge.call_tool("delete_budget", {"budget_id": created["id"]}))
    assert created["amount_usd"] == 0.000001
    assert updated["action"] == "alert" and updated["id"] == created["id"]
    assert missing["status"] == 404 and missing["error"]["code"] == "budget_not_found"
    assert escaped["status"] == 404
    assert deleted["deleted"] is True
    async with rest(live, acme.key) as api:
        assert (await api.get(f"/projects/{project['id']}")).status_code == 200
