"""The invoice list and the plan-change preview over MCP, in Stripe mode against the Stripe emulator.

Each tool is compared with the management endpoint it mirrors: the same body,
the same errors. One database: the billing tests cover both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.billing.stripe_world import StripeWorld, start_world
from tests.conftest import Org
from tests.mcp.conftest import error, http_client, key_with_role, ok, rest, stdio_client
from tests.support import databases
from tests.support.live_server import LiveServer

ALWAYS_AUTHENTICATE = "4000002760003184"  # Stripe's test card that asks for 3-D Secure on every payment
TEAM_MONTHLY = {"plan": "team", "interval": "monthly"}
PRO_ANNUAL = {"plan": "pro", "interval": "annual"}


@pytest.fixture
def world(tmp_path: Path, sqlite_template: Path) -> Iterator[StripeWorld]:
    yield from start_world(databases.sqlite_copy(sqlite_template, tmp_path), tmp_path / "data")


def _invoice_count(world: StripeWorld) -> int:
    return len(world.emu.events("invoice.created"))


def _checkout(world: StripeWorld, org: Org, *, card: str | None = None) -> str:
    """Subscribe to Pro monthly through our API, paid on the emulator's Checkout page; the subscription id."""
    with world.api(org) as api:
        started = api.post("/billing/checkout", json={"plan": "pro", "interval": "monthly"})
    assert started.status_code == 200, started.text
    extra: dict[str, Any] = {"card": card} if card else {}
    done = world.emu.complete_checkout(started.json()["data"]["id"], **extra)
    world.emu.wait_for_webhooks()
    return str(done["subscription"])


async def test_list_invoices_answers_what_the_endpoint_answers_page_by_page(world: StripeWorld) -> None:
    org = world.org()
    await asyncio.to_thread(_checkout, world, org)
    upgraded = await asyncio.to_thread(world.change_plan, org, "team")
    assert upgraded.status_code == 200, upgraded.text

    async with http_client(world.server, org.key) as mcp:
        everything = ok(await mcp.call_tool("list_invoices", {}))
        first = ok(await mcp.call_tool("list_invoices", {"limit": 1}))
        second = ok(await mcp.call_tool("list_invoices", {"limit": 1, "cursor": first["next_cursor"]}))
        foreign = error(await mcp.call_tool("list_invoices", {"cursor": "in_not_ours"}))
    async with rest(world.server, org.key) as api:
        assert everything == (await api.get("/billing/invoices")).json()
        assert first == (await api.get("/billing/invoices", params={"limit": 1})).json()
        assert (
            second
            == (
                await api.get("/billing/invoices", params={"limit": 1, "cursor": first["next_cursor"]})
            ).json()
        )
        refused = await api.get("/billing/invoices", params={"cursor": "in_not_ours"})

    # newest first: the upgrade's proration invoice, then Checkout's
    reasons = [(i["billing_reason"], i["status"]) for i in everything["data"]]
    assert reasons == [("subscription_update", "paid"), ("subscription_create", "paid")]
    assert everything["data"][1]["total_cents"] == 4900
    assert everything["has_more"] is False and everything["next_cursor"] is None
    assert first["has_more"] is True and first["data"] == everything["data"][:1]
    assert second["data"] == everything["data"][1:] and second["has_more"] is False
    assert foreign == {"status": refused.status_code, **refused.json()}
    assert foreign["status"] == 422 and foreign["error"]["code"] == "invalid_cursor"


async def test_preview_change_plan_shows_the_charge_that_change_plan_then_makes(world: StripeWorld) -> None:
    org = world.org()
    sub_id = await asyncio.to_thread(_checkout, world, org)
    invoices_before = _invoice_count(world)

    async with http_client(world.server, org.key) as mcp:
        preview = ok(await mcp.call_tool("preview_change_plan", TEAM_MONTHLY))
        leaving = ok(await mcp.call_tool("preview_change_plan", {"plan": "free"}))
        assert _invoice_count(world) == invoices_before  # a preview bills nothing
        async with rest(world.server, org.key) as api:
            answer = await api.post("/billing/change-plan/preview", json=TEAM_MONTHLY)
        assert preview == answer.json()["data"]
        changed = ok(await mcp.call_tool("change_plan", TEAM_MONTHLY))
    await asyncio.to_thread(world.emu.wait_for_webhooks)

    # the whole period of Pro back, the whole period of Team charged, on the day it started
    assert preview["object"] == "plan_change_preview"
    assert preview["plan"] == {"id": "team", "name": "Team", "interval": "monthly"}
    assert sorted(line["amount_cents"] for line in preview["lines"]) == [-4900, 19900]
    assert (preview["amount_due_cents"], preview["credit_cents"], preview["refund_cents"]) == (15000, 0, 0)
    assert preview["features_removed"] == []
    assert leaving["refund_cents"] == 4900 and leaving["amount_due_cents"] == 0
    assert "ensembles" in leaving["features_removed"]
    assert changed["plan"]["id"] == "team"
    invoice = await asyncio.to_thread(world.latest_invoice, sub_id)
    assert invoice.amount_paid == preview["amount_due_cents"]


async def test_an_upgrade_needing_3d_secure_hands_the_assistant_the_invoice_page(world: StripeWorld) -> None:
    org = world.org()
    sub_id = await asyncio.to_thread(_checkout, world, org, card=ALWAYS_AUTHENTICATE)

    async with http_client(world.server, org.key) as mcp:
        refused = error(await mcp.call_tool("change_plan", {"plan": "team", "interval": "monthly"}))
        billing = ok(await mcp.call_tool("get_billing", {}))

    invoice = await asyncio.to_thread(world.latest_invoice, sub_id)
    assert refused["status"] == 402
    assert refused["error"]["code"] == "payment_action_required"
    assert refused["error"]["hosted_invoice_url"] == invoice.hosted_invoice_url
    assert invoice.status == "open" and invoice.billing_reason == "subscription_update"
    assert billing["plan"]["id"] == "pro"  # nothing changes until the payment is confirmed


async def test_a_member_reads_invoices_but_is_shown_no_preview(world: StripeWorld) -> None:
    org = world.org()
    await asyncio.to_thread(_checkout, world, org)
    member = await key_with_role(world.server, org, "member")

    async with http_client(world.server, member) as mcp:
        listed = ok(await mcp.call_tool("list_invoices", {}))
        preview = error(await mcp.call_tool("preview_change_plan", {"plan": "team"}))

    assert len(listed["data"]) == 1
    assert preview["status"] == 403 and preview["error"]["required_role"] == "admin"


async def test_the_new_tools_are_typed_and_the_instructions_say_to_preview_first(world: StripeWorld) -> None:
    org = world.org()
    async with http_client(world.server, org.key) as mcp:
        tools = {t.name: t for t in (await mcp.list_tools()).tools}
        instructions = mcp.instructions or ""

    preview = tools["preview_change_plan"]
    assert preview.input_schema["required"] == ["plan"]
    assert preview.input_schema["properties"]["interval"]["enum"] == ["monthly", "annual"]
    assert preview.annotations is not None and preview.annotations.read_only_hint
    invoices = tools["list_invoices"].input_schema["properties"]
    assert set(invoices) == {"cursor", "limit"} and invoices["limit"]["maximum"] == 200
    assert "preview_change_plan" in (tools["change_plan"].description or "")
    assert "preview_change_plan" in instructions
    assert "payment_action_required" in instructions and "error.hosted_invoice_url" in instructions


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_without_stripe_both_transports_answer_what_the_endpoints_answer(
    live: LiveServer, acme: Org
) -> None:
    async with rest(live, acme.key) as api:
        listed = (await api.get("/billing/invoices")).json()
        previewed = await api.post("/billing/change-plan/preview", json=PRO_ANNUAL)
    async with http_client(live, acme.key) as mcp:
        assert ok(await mcp.call_tool("list_invoices", {})) == listed
        over_http = error(await mcp.call_tool("preview_change_plan", PRO_ANNUAL))
    # the stdio bridge forwards to the same endpoints: their method and path are right
    async with stdio_client(live, acme.key) as bridge:
        assert ok(await bridge.call_tool("list_invoices", {"limit": 5})) == listed
        over_stdio = error(await bridge.call_tool("preview_change_plan", PRO_ANNUAL))

    assert listed == {"data": [], "next_cursor": None, "has_more": False}
    assert over_http == over_stdio == {"status": previewed.status_code, **previewed.json()}
    assert over_http["status"] == 409 and over_http["error"]["code"] == "billing_not_configured"
