"""An assistant drives an upgrade over MCP, in Stripe mode against the Stripe emulator."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.billing.stripe_world import StripeWorld, start_world
from tests.mcp.conftest import error, http_client, key_with_role, ok, rest
from tests.support import databases


@pytest.fixture
def world(tmp_path: Path, sqlite_template: Path) -> Iterator[StripeWorld]:
    # one database: the billing tests cover both; this one proves the MCP door
    yield from start_world(databases.sqlite_copy(sqlite_template, tmp_path), tmp_path / "data")


async def test_an_assistant_subscribes_then_upgrades_and_the_change_says_mcp(world: StripeWorld) -> None:
    org = world.org()
    member = await key_with_role(world.server, org, "member")
    async with http_client(world.server, member) as mcp:
        refused = error(await mcp.call_tool("change_plan", {"plan": "team"}))
    assert refused["status"] == 403 and refused["error"]["code"] == "role_not_allowed"

    async with http_client(world.server, org.key) as mcp:
        started = ok(await mcp.call_tool("create_checkout_session", {"plan": "pro", "interval": "monthly"}))
        assert set(started) == {"url", "id"} and started["url"].startswith(world.emu.base_url)
        # a person pays on the Checkout page; Stripe tells us by webhook
        await asyncio.to_thread(world.emu.complete_checkout, started["id"])
        await asyncio.to_thread(world.emu.wait_for_webhooks)
        pro = ok(await mcp.call_tool("get_billing", {}))
        again = error(await mcp.call_tool("create_checkout_session", {"plan": "team"}))
        team = ok(await mcp.call_tool("change_plan", {"plan": "team", "interval": "annual"}))
        portal = ok(await mcp.call_tool("create_portal_session", {}))
        await asyncio.to_thread(world.emu.wait_for_webhooks)

    assert pro["plan"]["id"] == "pro" and pro["has_subscription"] is True
    assert again["status"] == 409 and again["error"]["code"] == "subscription_exists"
    assert team["plan"] == {"id": "team", "name": "Team", "interval": "annual"}
    assert team["meters"]["projects"]["limit"] == 25
    async with rest(world.server, org.key) as api:
        assert (await api.get("/billing")).json()["data"]["plan"] == team["plan"]
    assert portal["url"].startswith(f"{world.emu.base_url}/portal/")
    changes = await asyncio.to_thread(world.plan_changes, org.id)
    assert [(c.from_plan, c.to_plan, c.source) for c in changes] == [
        ("free", "pro", "mcp"),
        ("pro", "team", "mcp"),
    ]
