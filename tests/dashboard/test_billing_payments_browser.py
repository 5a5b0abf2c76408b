"""Settings -> Billing in a real browser, against the Stripe emulator: what a plan change
costs before it is made, 3-D Secure, invoices, and the billing details Stripe holds."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, ViewportSize, expect
from sqlalchemy import select

from modelux_server.dashboard import billing_pages
from modelux_server.models import PlanState
from modelux_server.services import Services
from tests.dashboard.conftest import Shots, Site
from tests.dashboard.test_browser import _sign_up

ALWAYS_AUTHENTICATE = "4000002760003184"  # Stripe's test card that asks for 3-D Secure on every payment
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}


def _state(site: Site) -> PlanState:
    async def read(rt: Services) -> PlanState:
        async with rt.db.session() as session:
            return (await session.execute(select(PlanState))).scalar_one()

    state: PlanState = site.server.call(read)
    return state


def _subscribe_to_pro(page: Page, site: Site, card: str | None = None) -> None:
    """Upgrade to Pro from the plan table, paid on the emulator's Checkout page."""
    page.get_by_test_id("plan-pro").get_by_role("button", name="Upgrade to Pro").click()
    expect(page).to_have_url(re.compile(re.escape(site.emu.base_url) + "/checkout/"))
    if card:
        page.get_by_label("Card number").fill(card)
    page.locator("#pay").click()
    expect(page.get_by_test_id("current-plan")).to_have_text("Pro")
    site.emu.wait_for_webhooks()


def _latest_invoice(site: Site) -> dict[str, Any]:
    subscription = site.emu.get(str(_state(site).stripe_subscription_id))
    return site.emu.get(subscription["latest_invoice"])


def _fits_a_phone(page: Page) -> None:
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def _new_page(chromium: Any) -> tuple[Any, Page]:
    context = chromium.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    return context, context.new_page()


def test_a_plan_change_shows_stripes_amount_before_charging_and_the_invoices_list_it(
    chromium: Any, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    shots = Shots("plan-change-preview")
    context, page = _new_page(chromium)
    _sign_up(page, site)
    _subscribe_to_pro(page, site)
    invoices_before = len(site.emu.events("invoice.created"))

    # leaving for Free: the refund policy and the unused time that goes back to the card
    page.get_by_test_id("plan-free").get_by_role("link", name="Downgrade to Free").click()
    expect(page.locator("#refund-policy")).to_contain_text("refunded to your card")
    expect(page.locator("#preview")).to_contain_text("Refunded to your card")
    expect(page.get_by_test_id("preview-amount")).to_have_text("$49.00")
    expect(page.locator("#downgrade-effects")).to_contain_text("Ensembles")
    shots.take(page, "confirm-free")
    page.get_by_role("link", name="Cancel").click()

    # the upgrade: Stripe's proration on the page, nothing charged until it is confirmed
    page.get_by_test_id("plan-team").get_by_role("link", name="Upgrade to Team").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Upgrade to Team?")
    expect(page.get_by_test_id("preview-amount")).to_have_text("$150.00")
    lines = page.locator("#preview table")
    expect(lines).to_contain_text("-$49.00")
    expect(lines).to_contain_text("$199.00")
    assert len(site.emu.events("invoice.created")) == invoices_before
    shots.take(page, "confirm-upgrade")
    _fits_a_phone(page)
    shots.take(page, "confirm-upgrade-phone")
    page.set_viewport_size(DESKTOP)
    page.get_by_role("button", name=re.compile("^Confirm")).click()
    expect(page.get_by_role("status").first).to_contain_text("Your plan was changed")
    expect(page.get_by_test_id("current-plan")).to_have_text("Team")
    site.emu.wait_for_webhooks()
    assert len(site.emu.events("invoice.created")) == invoices_before + 1
    upgrade = _latest_invoice(site)
    assert upgrade["amount_paid"] == 15000

    # the invoices, newest first, one a page here, with Stripe's page and PDF for each
    monkeypatch.setattr(billing_pages, "INVOICES_PER_PAGE", 1)
    page.get_by_role("link", name="Invoices", exact=True).click()
    rows = page.get_by_test_id("invoice-row")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(upgrade["number"])
    expect(rows).to_contain_text("$150.00")
    expect(rows).to_contain_text("paid", ignore_case=True)
    expect(rows.get_by_role("link", name=re.compile("^View invoice"))).to_have_attribute(
        "href", upgrade["hosted_invoice_url"]
    )
    expect(rows.get_by_role("link", name=re.compile("^PDF of invoice"))).to_have_attribute(
        "href", upgrade["invoice_pdf"]
    )
    expect(page.get_by_role("link", name="Newest invoices")).to_have_count(0)
    shots.take(page, "invoices")
    page.get_by_role("link", name="Next page").click()
    expect(page).to_have_url(re.compile(r"/settings/billing/invoices\?cursor=" + upgrade["id"]))
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("$49.00")
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    expect(page.get_by_role("link", name="Newest invoices")).to_be_visible()
    _fits_a_phone(page)
    # one block per invoice, each value labelled, instead of a table wider than the screen
    labels = page.evaluate(
        "[...document.querySelectorAll('[data-testid=invoice-row] td')]"
        ".map(td => getComputedStyle(td, '::before').content)"
    )
    assert labels[:4] == ['"Number"', '"Date"', '"Period"', '"Amount"']
    shots.take(page, "invoices-phone")

    # a cursor that is not one of this organization's invoices: said so, with the way back
    page.goto(f"{site.url}/settings/billing/invoices?cursor=in_someone_elses")
    expect(page.locator("#problem")).to_contain_text("not one of this organization's invoices")
    expect(rows).to_have_count(0)
    page.get_by_role("link", name="Newest invoices").click()
    expect(rows).to_have_count(1)
    context.close()


def test_an_upgrade_the_bank_must_confirm_links_to_the_invoice_page_and_applies_once_paid(
    chromium: Any, site: Site
) -> None:
    shots = Shots("plan-change-3ds")
    context, page = _new_page(chromium)
    _sign_up(page, site)
    _subscribe_to_pro(page, site, card=ALWAYS_AUTHENTICATE)

    page.get_by_test_id("plan-team").get_by_role("link", name="Upgrade to Team").click()
    expect(page.get_by_test_id("preview-amount")).to_have_text("$150.00")
    page.get_by_role("button", name=re.compile("^Confirm")).click()
    problem = page.locator("#problem")
    expect(problem).to_contain_text("Your bank asks you to confirm this payment")
    invoice = _latest_invoice(site)
    assert invoice["status"] == "open" and invoice["billing_reason"] == "subscription_update"
    confirm = page.get_by_role("link", name="Confirm the payment")
    expect(confirm).to_have_attribute("href", invoice["hosted_invoice_url"])
    expect(page.get_by_test_id("current-plan")).to_have_text("Pro")
    shots.take(page, "confirm-the-payment")
    _fits_a_phone(page)
    expect(confirm).to_be_in_viewport()
    shots.take(page, "confirm-the-payment-phone")

    # the customer confirms on Stripe's page; the pending upgrade applies when the invoice is paid
    confirm.click()
    page.locator("#authenticate").click()
    expect(page.locator("#paid")).to_be_visible()
    site.emu.wait_for_webhooks()
    page.goto(f"{site.url}/settings/billing")
    expect(page.get_by_test_id("current-plan")).to_have_text("Team")
    context.close()


def test_billing_details_show_the_tax_ids_and_email_stripe_holds_escaped(chromium: Any, site: Site) -> None:
    context, page = _new_page(chromium)
    _sign_up(page, site)
    _subscribe_to_pro(page, site)
    expect(page.get_by_test_id("tax-ids")).to_have_text("None")

    hostile = '<img id="pwned" src="/x" onerror="document.title=1">DE123456789'
    customer = str(_state(site).stripe_customer_id)
    site.emu.portal_update_customer(customer, email="accounts@acme.test", tax_id=hostile)
    site.emu.wait_for_webhooks()
    page.reload()

    tax_ids = page.get_by_test_id("tax-ids")
    expect(tax_ids).to_contain_text("EU VAT")
    expect(tax_ids).to_contain_text(hostile)  # shown as text
    expect(page.locator("#pwned")).to_have_count(0)  # never as markup
    expect(page.get_by_test_id("billing-email")).to_have_text("accounts@acme.test")
    _fits_a_phone(page)
    context.close()
