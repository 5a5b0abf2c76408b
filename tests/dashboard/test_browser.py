"""The whole customer journey in a real browser, Checkout and webhooks included."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from tests.dashboard.conftest import Shots, Site
from tests.dashboard.forms import PASSWORD


def _sign_up(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/signup")
    page.get_by_label("Organization name").fill("Acme Robotics")
    page.get_by_label("Your email").fill("owner@acme.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create organization").click()


def _meter(page: Page, name: str) -> Any:
    return page.locator(".meter", has=page.locator(f"#meter-{name}"))


def test_sign_up_create_a_key_upgrade_switch_to_annual_and_downgrade(chromium: Any, site: Site) -> None:
    shots = Shots("journey")
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())

    # sign up: Free, no card, its meters
    _sign_up(page, site)
    expect(page).to_have_url(re.compile(r"/settings/billing"))
    expect(page.get_by_test_id("current-plan")).to_have_text("Free")
    expect(page.get_by_role("status").first).to_contain_text("no card needed")
    expect(_meter(page, "monthly_requests")).to_contain_text("0 / 10,000")
    expect(_meter(page, "projects")).to_contain_text("0 / 1")
    expect(page.get_by_role("navigation", name="Sections")).to_be_visible()
    expect(page.locator(".who")).to_contain_text("Acme Robotics")
    shots.take(page, "free")

    # a project and a key, the secret shown once with a copy button
    page.get_by_role("link", name="Projects").click()
    page.get_by_label("Name", exact=True).fill("web")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("status")).to_have_text("Project created.")
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name", exact=True).fill("production")
    page.get_by_role("button", name="Create API key").click()
    expect(page.locator("#new-secret")).to_have_value(re.compile(r"^mlx_sk_"))
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    shots.take(page, "api-key-once")

    # upgrade to Pro through Checkout; the webhook is held: the return page reads
    # the Checkout Session from Stripe and shows Pro without waiting for it
    page.get_by_role("link", name="Billing").click()
    expect(_meter(page, "projects")).to_contain_text("1 / 1")
    expect(_meter(page, "projects")).to_contain_text("Limit reached")
    site.emu.hold_webhooks()
    page.get_by_test_id("plan-pro").get_by_role("button", name="Upgrade to Pro").click()
    expect(page).to_have_url(re.compile(re.escape(site.emu.base_url) + "/checkout/"))
    page.locator("#pay").click()
    expect(page).to_have_url(re.compile(r"/settings/billing\?checkout=success&session_id=cs_"))
    expect(page.locator("#checkout-pending")).to_have_count(0)
    expect(page.get_by_test_id("current-plan")).to_have_text("Pro")
    expect(page.get_by_role("button", name="Upgrade to Pro")).to_have_count(0)  # no second Checkout
    shots.take(page, "checkout-return")
    site.emu.release_webhooks()  # the late webhook finds nothing left to do
    site.emu.wait_for_webhooks()
    page.reload()
    expect(page.get_by_test_id("current-plan")).to_have_text("Pro")
    expect(page.get_by_role("status").first).to_contain_text("subscription is active")
    expect(page.get_by_test_id("current-interval")).to_contain_text("monthly")
    expect(_meter(page, "monthly_requests")).to_contain_text("0 / 250,000")
    expect(_meter(page, "projects")).to_contain_text("1 / 5")
    expect(page.get_by_test_id("renewal")).to_have_text("Feb 10, 2026")
    expect(page.get_by_role("button", name=re.compile("Manage payment method"))).to_be_visible()
    shots.publish(shots.take(page, "pro"))

    # switch to annual: the toggle shows the saving, the change is confirmed first
    page.get_by_role("link", name=re.compile("^Annual")).click()
    pro = page.get_by_test_id("plan-pro")
    expect(pro).to_contain_text("$490")
    expect(pro).to_contain_text("save $98 a year")
    pro.get_by_role("link", name="Switch to annual billing").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Switch to annual billing?")
    expect(page.locator("main")).to_contain_text("Takes effect immediately.")
    page.get_by_role("button", name=re.compile("^Confirm")).click()
    expect(page.get_by_role("status").first).to_contain_text("Your plan was changed")
    expect(page.get_by_test_id("current-interval")).to_contain_text("annual")
    shots.take(page, "pro-annual")

    # an ensemble (a Pro feature), then a downgrade that turns it off
    page.get_by_role("link", name="Routing").click()
    page.get_by_label("Slug").fill("vote")
    page.get_by_label("Strategy", exact=True).select_option("ensemble")
    page.get_by_label("Strategy fields (JSON)").fill(
        '{"members": [{"model": "openai/gpt-4o"}, {"model": "anthropic/claude-3-5-haiku"}]}'
    )
    page.get_by_role("button", name="Create routing config").click()
    expect(page.get_by_test_id("rc-vote")).to_contain_text("active")
    page.get_by_role("link", name="Billing").click()
    page.get_by_test_id("plan-free").get_by_role("link", name="Downgrade to Free").click()
    effects = page.locator("#downgrade-effects")
    expect(effects).to_contain_text("stop working right away")
    expect(effects).to_contain_text("Ensembles")
    expect(effects).to_contain_text("@vote")
    shots.take(page, "confirm-downgrade")
    page.get_by_role("button", name=re.compile("^Confirm")).click()
    expect(page.get_by_test_id("current-plan")).to_have_text("Free")
    expect(page.get_by_role("heading", name="Switched off by your plan")).to_be_visible()
    expect(page.locator(".dormant")).to_contain_text("The Free plan does not include ensembles")
    expect(page.get_by_test_id("plan-pro")).to_contain_text("Upgrade to Pro")
    shots.take(page, "free-after-downgrade")
    page.get_by_role("link", name="Routing").click()
    expect(page.get_by_test_id("rc-vote")).to_contain_text("inactive")

    # a phone-width screen: everything fits, nothing scrolls sideways
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("link", name="Billing").click()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shots.take(page, "phone")
    context.close()
