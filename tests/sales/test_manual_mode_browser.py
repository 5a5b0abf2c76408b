"""Settings -> Billing in Chromium without a payment processor: no dead payment controls, the
plan table, who manages plans, and the "Talk to sales" form reaching sales by real SMTP."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from tests.dashboard.forms import PASSWORD
from tests.dashboard.test_csp_browser import REPORT_VIOLATIONS
from tests.notifications.conftest import Smtp, body, worker
from tests.sales.conftest import SALES
from tests.support.live_server import LiveServer

SALES_URL = "https://sales.modelux.test/enterprise"
DEAD = re.compile(r"upgrade|downgrade|checkout|manage payment|portal|switch to", re.IGNORECASE)


def _sign_up(page: Page, url: str) -> None:
    page.goto(f"{url}/signup")
    page.get_by_label("Organization name").fill("Acme")
    page.get_by_label("Your email").fill("owner@acme.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create organization").click()
    expect(page).to_have_url(re.compile(r"/settings/billing"))


def _no_payment_controls(page: Page) -> None:
    assert page.get_by_role("button", name=DEAD).count() == 0
    assert page.get_by_role("link", name=DEAD).count() == 0
    for action in ("checkout", "portal", "change"):
        assert page.locator(f'form[action="/settings/billing/{action}"]').count() == 0
    assert page.locator('a[href*="/settings/billing/change"]').count() == 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_manual_billing_shows_no_dead_buttons_and_the_sales_form_reaches_sales(
    chromium: Any, settings: Settings, clock: FrozenClock, smtp: Any
) -> None:
    mail: Smtp = smtp()
    settings = settings.model_copy(update={"sales_url": SALES_URL})
    server = LiveServer(settings, clock=clock)
    settings.public_url = server.url  # the session cookie is Secure only on https
    server.start()
    context = chromium.new_context(viewport={"width": 390, "height": 844})
    try:
        context.set_default_timeout(15_000)
        context.add_init_script(REPORT_VIOLATIONS)
        page = context.new_page()
        reports: list[str] = []
        page.on("console", lambda m: reports.append(m.text) if "olicy" in m.text else None)
        page.on("pageerror", lambda exc: reports.append(str(exc)))
        _sign_up(page, server.url)

        assert server.runtime.settings.billing_mode == "manual"
        managed = page.get_by_test_id("managed-by-admin")
        expect(managed).to_contain_text("Plans are managed by your administrator.")
        expect(managed.get_by_role("link", name="Talk to sales")).to_have_attribute("href", "#sales")
        expect(managed.get_by_role("link", name="Contact us")).to_have_attribute("href", SALES_URL)
        for plan in ("free", "pro", "team", "enterprise"):
            expect(page.get_by_test_id(f"plan-{plan}")).to_be_visible()
        expect(page.get_by_test_id("plan-free").get_by_text("Current plan")).to_be_visible()
        _no_payment_controls(page)
        page.get_by_role("link", name="Annual").click()  # the interval toggle only re-prices
        _no_payment_controls(page)

        page.get_by_test_id("plan-enterprise").get_by_role("link", name="Contact sales").click()
        expect(page).to_have_url(re.compile(r"#sales$"))
        sales = page.locator("#sales")
        # refused: the reason beside the form, what was typed kept
        sales.get_by_label("Seats").fill("40")
        sales.get_by_label("Message").fill("   ")
        sales.get_by_role("button", name="Send to sales").click()
        expect(page.locator("#sales-problem")).to_contain_text("message: Field required")
        expect(page.locator("#sales").get_by_label("Seats")).to_have_value("40")

        sales = page.locator("#sales")
        sales.get_by_label("Single sign-on (SSO)").check()
        sales.get_by_label("Data residency").check()
        sales.get_by_label("Message").fill("We need SSO and EU residency.\nAbout 40 people.")
        sales.get_by_label("Reply to").fill("cto@acme.test")
        sales.get_by_role("button", name="Send to sales").click()
        expect(page.get_by_test_id("sales-sent")).to_contain_text("we received your message")
        expect(page).to_have_url(re.compile(r"sales=sent#sales$"))
        _no_payment_controls(page)
        assert reports == []
    finally:
        context.close()

    try:
        rt = server.runtime
        assert server.call(worker(rt, mail.url).run_once()) == 1
        assert server.call(worker(rt, mail.url).run_once()) == 0
    finally:
        server.stop()
    (sent,) = mail.sink.accepted
    assert str(sent["To"]) == SALES and str(sent["Reply-To"]) == "cto@acme.test"
    text = body(sent)
    assert "We need SSO and EU residency.\nAbout 40 people." in text
    assert "- Single sign-on (SSO)" in text and "- Data residency" in text
    assert "Seats:             40" in text and "owner@acme.test, through the dashboard" in text
