"""The plan-change confirmation, billing details and invoices pages over HTTP, on both databases.

The app here has no payment processor (manual billing): the confirmation
step cannot get Stripe's amount, so it says why and offers no button. The
Stripe side runs in the browser tests (test_billing_payments_browser.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from modelux_server.auth.principal import Principal
from modelux_server.member.invitations import invite
from modelux_server.models import Organization, PlanState
from modelux_server.services import Services
from tests.dashboard.forms import browser, log_in, sign_up
from tests.support.invitations import join
from tests.support.plans import move_to


async def _org_id(rt: Services) -> str:
    async with rt.db.session() as session:
        return (await session.execute(select(Organization.id))).scalar_one()


async def test_without_an_amount_to_show_the_confirmation_offers_no_button(app: Any, rt: Services) -> None:
    async with browser(app) as client:
        await sign_up(client)
        await move_to(rt, await _org_id(rt), "pro")
        upgrade = await client.get("/settings/billing/change?plan=team&interval=monthly")
        leave = await client.get("/settings/billing/change?plan=free&interval=monthly")

    assert upgrade.status_code == 409
    assert 'role="alert"' in upgrade.text and "managed by your administrator" in upgrade.text
    assert 'action="/settings/billing/change"' not in upgrade.text and "Confirm:" not in upgrade.text
    assert 'href="/settings/billing">Back to billing</a>' in upgrade.text
    assert 'id="preview"' not in upgrade.text
    # leaving for Free states the refund policy even where there is nothing to refund
    assert "Downgrade to Free?" in leave.text and "refunded to your card" in leave.text
    assert "Ensembles" in leave.text.split('id="downgrade-effects"', 1)[1]
    assert "Confirm:" not in leave.text


async def test_a_member_sees_what_a_change_does_but_no_amount_and_no_button(app: Any, rt: Services) -> None:
    async with browser(app) as owner:
        await sign_up(owner)
    org_id = await _org_id(rt)
    await move_to(rt, org_id, "pro")
    async with rt.db.session() as session:
        state = await session.get(PlanState, org_id)
        assert state is not None
        state.tax_ids = [{"type": "eu_vat", "value": "DE<b>1</b>"}]
        state.billing_email = "accounts@acme.test"
        await invite(session, rt, Principal(org_id, "owner", "test"), email="dev@acme.test", role="member")
    await join(app, rt, "dev@acme.test")
    async with browser(app) as member:
        assert (await log_in(member, "dev@acme.test")).status_code == 303
        confirm = await member.get("/settings/billing/change?plan=free&interval=monthly")
        billing = (await member.get("/settings/billing")).text

    assert confirm.status_code == 200 and 'role="alert" id="problem"' not in confirm.text
    assert "Only owners and admins can change the plan." in confirm.text
    assert "Confirm:" not in confirm.text and 'id="preview"' not in confirm.text
    details = billing.split('id="billing-details"', 1)[1].split("</section>", 1)[0]
    assert "accounts@acme.test" in details
    assert "EU VAT" in details and "DE&lt;b&gt;1&lt;/b&gt;" in details and "<b>1" not in details
    assert "/settings/billing/invoices" not in details  # no invoices without Stripe
    assert "/settings/billing/portal" not in details


async def test_without_stripe_the_invoices_page_says_who_bills(app: Any) -> None:
    async with browser(app) as client:
        await sign_up(client)
        empty = await client.get("/settings/billing/invoices")

    assert empty.status_code == 200
    assert "managed by your administrator" in empty.text and 'data-testid="invoice-row"' not in empty.text
    assert 'aria-current="page">Billing<' in empty.text
