"""The `contact_sales` tool, through the official `mcp` client: the endpoint's answers and errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from modelux_server.models import Notification
from modelux_server.services import Services
from tests.conftest import Org, make_org
from tests.mcp.conftest import error, http_client, key_with_role, ok, rest, stdio_client
from tests.notifications.conftest import outbox
from tests.sales.conftest import SALES
from tests.support.live_server import LiveServer

ASK = {"message": "Unlimited requests and SCIM?", "seats": 120, "needs": ["scim", "volume"]}


@pytest.fixture
def live(settings: Settings, clock: FrozenClock) -> Iterator[LiveServer]:
    server = LiveServer(settings, clock=clock).start()
    yield server
    server.stop()


@pytest.fixture
def acme(live: LiveServer) -> Org:
    org: Org = live.call(make_org(live.runtime))
    return org


def _emails(live: LiveServer, org: Org) -> list[Notification]:
    async def read(rt: Services) -> list[Notification]:
        return [n for n in await outbox(rt, org.id) if n.kind == "sales_inquiry"]

    return live.call(read)


async def test_the_tool_is_listed_with_the_bodys_schema(live: LiveServer, acme: Org) -> None:
    async with http_client(live, acme.key) as mcp:
        tools = {t.name: t for t in (await mcp.list_tools()).tools}
    schema = tools["contact_sales"].input_schema
    assert schema["required"] == ["message"]
    assert schema["properties"]["message"]["maxLength"] == 5000
    needs = schema["properties"]["needs"]
    assert "sso" in str(needs) and "warehouse_export" in str(needs)
    annotations = tools["contact_sales"].annotations
    assert annotations is not None and not annotations.read_only_hint and not annotations.destructive_hint


async def test_the_tool_answers_what_the_endpoint_answers_and_emails_sales_once(
    live: LiveServer, acme: Org
) -> None:
    async with http_client(live, acme.key) as mcp:
        asked = ok(await mcp.call_tool("contact_sales", ASK))
    async with rest(live, acme.key) as api:
        r = await api.post("/billing/sales-inquiry", json=ASK)
    assert r.status_code == 201
    through_api = r.json()["data"]

    differs = {"id", "source"}
    assert {k: v for k, v in asked.items() if k not in differs} == {
        k: v for k, v in through_api.items() if k not in differs
    }
    assert asked["source"] == "mcp" and through_api["source"] == "api"
    assert asked["needs"] == ["scim", "volume"] and asked["seats"] == 120
    emails = _emails(live, acme)
    assert sorted(n.dedupe_key for n in emails) == sorted(
        f"sales_inquiry:{i}" for i in (asked["id"], through_api["id"])
    )
    assert {tuple(n.recipients) for n in emails} == {(SALES,)}


REFUSED: list[dict[str, Any]] = [
    {"message": ""},
    {"message": "bell \x07"},
    {"message": "a\x00b"},
    {"message": "hi", "needs": ["discount"]},
    {"message": "hi", "needs": ["sso", "sso"]},
    {"message": "hi", "seats": 0},
    {"message": "hi", "seats": "12"},
    {"message": "hi", "monthly_requests": -5},
    {"message": "hi", "contact_email": "nobody"},
    {"message": "hi", "budget": 5},
]


async def test_refusals_are_the_endpoints_errors_and_send_nothing(live: LiveServer, acme: Org) -> None:
    async with http_client(live, acme.key) as mcp:
        answers = [error(await mcp.call_tool("contact_sales", args)) for args in REFUSED]
        missing = error(await mcp.call_tool("contact_sales", {"seats": 3}))
    async with rest(live, acme.key) as api:
        for args, answer in zip(REFUSED, answers, strict=True):
            expected = await api.post("/billing/sales-inquiry", json=args)
            assert expected.status_code == 422, args
            assert answer == {"status": 422, **expected.json()}, args
    assert missing["status"] == 422 and missing["error"]["param"] == "message"
    assert _emails(live, acme) == []


async def test_a_member_key_may_ask(live: LiveServer, acme: Org) -> None:
    member = await key_with_role(live, acme, "member")
    async with http_client(live, member) as mcp:
        asked = ok(await mcp.call_tool("contact_sales", {"message": "From a member"}))
    assert asked["requested_by"].startswith("mk_") and asked["message"] == "From a member"
    assert len(_emails(live, acme)) == 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_stdio_bridge_sends_it_to_the_server(live: LiveServer, acme: Org) -> None:
    async with stdio_client(live, acme.key) as bridge:
        asked = ok(await bridge.call_tool("contact_sales", ASK))
        refused = error(await bridge.call_tool("contact_sales", {"message": "hi", "needs": ["nope"]}))
    # the bridge forwards to POST /manage/v1/billing/sales-inquiry
    assert asked["source"] == "api" and asked["needs"] == ["scim", "volume"]
    assert refused["status"] == 422 and refused["error"]["param"] == "needs.0"
    assert [n.dedupe_key for n in _emails(live, acme)] == [f"sales_inquiry:{asked['id']}"]
