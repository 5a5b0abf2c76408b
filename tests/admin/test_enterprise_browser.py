"""An Enterprise customer's billing page in Chromium: the operator sets the plan through
/admin/v1, the customer sees its contract, payment terms, invoices, support and SLA, and
no self-serve buttons."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from tests.support.phone import signed_up_on_a_phone

SECRET = "op-secret-0123456789abcdefghij"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_customer_sees_the_agreement_and_its_invoices(
    chromium: Any, settings: Settings, clock: FrozenClock
) -> None:
    with signed_up_on_a_phone(
        chromium,
        settings.model_copy(update={"admin_token": f"olga:{SECRET}"}),
        clock,
        "Initech",
        "bill@initech.test",
    ) as (server, page):
        with httpx.Client(
            base_url=f"{server.url}/admin/v1", headers={"Authorization": f"Bearer {SECRET}"}
        ) as op:
            found = op.get("/organizations", params={"search": "bill@initech.test"}).json()["data"]
            assert len(found) == 1
            org_id = found[0]["id"]
            r = op.post(
                f"/organizations/{org_id}/enterprise-plan",
                json={
                    "name": "Initech Enterprise",
                    "limits": {"monthly_requests": "unlimited"},
                    "price": {"amount": 60000, "interval": "annual"},
                    "contract": {"start": "2026-11-01", "end": "2027-10-31", "auto_renew": False},
                    "payment": {"method": "invoice", "net_days": 30, "po_number": "PO-42"},
                    "billing_contact": {"email": "ap@initech.test"},
                    "support_channel": "Shared Slack #initech",
                    "sla": {"uptime_percent": "99.9", "response_minutes": {"sev1": 60}},
                },
            )
            assert r.status_code == 201, r.text
            # manual billing mode: the operator records the invoice it sent, due before "now"
            r = op.post(
                f"/organizations/{org_id}/invoices",
                json={"amount": "60000", "number": "INV-0001", "due": "2026-11-20", "po_number": "PO-42"},
            )
            assert r.status_code == 201, r.text
            assert r.json()["data"]["status"] == "past_due"

        page.goto(f"{server.url}/settings/billing")
        expect(page.get_by_test_id("current-plan")).to_have_text("Initech Enterprise")
        agreement = page.get_by_test_id("enterprise-agreement")
        expect(agreement).to_contain_text("contact your account manager")
        expect(page.get_by_test_id("enterprise-contract")).to_contain_text("2026-11-01 to 2027-10-31")
        expect(page.get_by_test_id("enterprise-contract")).to_contain_text("does not renew automatically")
        expect(page.get_by_test_id("enterprise-payment")).to_contain_text("Invoice, net 30 days (PO PO-42)")
        expect(page.get_by_test_id("enterprise-billing-contact")).to_contain_text("ap@initech.test")
        expect(page.get_by_test_id("enterprise-support")).to_have_text("Shared Slack #initech")
        expect(page.get_by_test_id("enterprise-sla")).to_contain_text(
            "99.9% uptime; SEV1 response within 60 min"
        )
        expect(page.get_by_test_id("enterprise-limits")).to_contain_text("Monthly requests: Unlimited")
        invoices = page.get_by_test_id("enterprise-invoices")
        expect(invoices).to_contain_text("INV-0001")
        expect(invoices.get_by_test_id("invoice-status")).to_have_text("past due")
        # an Enterprise plan is not changed here: no self-serve plan buttons at all
        expect(page.get_by_role("button", name=re.compile(r"^(Upgrade|Downgrade|Switch)"))).to_have_count(0)
        expect(page.get_by_role("link", name=re.compile(r"^(Upgrade|Downgrade|Switch)"))).to_have_count(0)
