"""An Enterprise organization's billing facts, the same through GET /manage/v1/billing and
the MCP `get_billing` tool (official `mcp` client): contract, price, payment terms, invoices,
billing contact, support channel and SLA."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from tests.conftest import Org, make_org
from tests.mcp.conftest import http_client, ok, rest
from tests.support.live_server import LiveServer

SECRET = "op-secret-0123456789abcdefghij"


@pytest.fixture
def live(settings: Settings, clock: FrozenClock) -> Iterator[LiveServer]:
    server = LiveServer(settings.model_copy(update={"admin_token": SECRET}), clock=clock).start()
    yield server
    server.stop()


@pytest.fixture
def acme(live: LiveServer) -> Org:
    org: Org = live.call(make_org(live.runtime))
    return org


async def test_the_api_and_mcp_carry_the_same_enterprise_facts(live: LiveServer, acme: Org) -> None:
    async with httpx.AsyncClient(
        base_url=f"{live.url}/admin/v1", headers={"Authorization": f"Bearer {SECRET}"}
    ) as op:
        r = await op.post(
            f"/organizations/{acme.owner_email}/enterprise-plan",
            json={
                "limits": {"monthly_requests": "unlimited", "projects": 100},
                "price": {"amount": "2500.50", "currency": "EUR", "interval": "quarterly"},
                "contract": {
                    "start": "2026-10-01",
                    "end": "2027-09-30",
                    "auto_renew": True,
                    "notice_days": 90,
                },
                "payment": {"method": "invoice", "net_days": 45},
                "billing_contact": {"name": "Ap Team", "email": "AP@Acme.test"},
                "support_channel": "support@acme-vendor.test (priority queue)",
                "sla": {"uptime_percent": "99.99", "response_minutes": {"sev2": 240, "sev1": 15}},
            },
        )
        assert r.status_code == 201, r.text
        r = await op.post(
            f"/organizations/{acme.id}/invoices", json={"amount": 2500.5, "currency": "eur", "number": "A-1"}
        )
        assert r.status_code == 201, r.text

    async with rest(live, acme.key) as api:
        billing = (await api.get("/billing")).json()["data"]
    custom = billing["custom_plan"]
    assert billing["plan"]["name"] == "Enterprise" and billing["meters"]["monthly_requests"]["limit"] is None
    assert custom["contract"] == {
        "start": "2026-10-01",
        "end": "2027-09-30",
        "auto_renew": True,
        "notice_days": 90,
        "end_plan": "free",
    }
    assert custom["price"] == {
        "amount": "2500.50",
        "currency": "eur",
        "interval": "quarterly",
        "minimum_commitment": None,
    }
    assert custom["payment"] == {"method": "invoice", "net_days": 45, "po_number": None}
    assert custom["billing_contact"] == {"name": "Ap Team", "email": "ap@acme.test"}
    assert custom["support_channel"] == "support@acme-vendor.test (priority queue)"
    # severities in their order, whatever order they were given in
    assert custom["sla"] == {"uptime_percent": "99.99", "response_minutes": {"sev1": 15, "sev2": 240}}
    assert [(i["number"], i["status"], i["amount"], i["currency"]) for i in custom["invoices"]] == [
        ("A-1", "open", "2500.50", "eur")
    ]

    async with http_client(live, acme.key) as mcp:
        assert ok(await mcp.call_tool("get_billing", {})) == billing
