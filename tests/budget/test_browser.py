"""The Budgets page in Chromium, at a phone's width, under the real Content-Security-Policy."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from modelux_server.models import Budget
from modelux_server.services import Services
from tests.budget.support import period_of, record_spend
from tests.dashboard.forms import PASSWORD
from tests.dashboard.test_csp_browser import REPORT_VIOLATIONS, _png_rows
from tests.support.live_server import LiveServer

OK = (0x3F, 0x37, 0xC9)  # --ok in app.css
FULL = (0xB4, 0x23, 0x18)  # --full


def _filled(page: Page, colour: tuple[int, int, int]) -> float:
    """The share of the budget's bar painted in `colour`, read off a screenshot of it."""
    bpp, rows = _png_rows(page.locator("article.budget meter").screenshot())
    middle = rows[len(rows) // 2]
    pixels = [middle[i : i + 3] for i in range(0, len(middle), bpp)]
    return sum(1 for p in pixels if sum(abs(a - b) for a, b in zip(p, colour, strict=True)) < 40) / len(
        pixels
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_budget_is_made_edited_and_deleted_on_a_phone_and_its_bar_shows_the_spend(
    chromium: Any, settings: Settings, clock: FrozenClock
) -> None:
    settings = settings.model_copy()
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
        page.on("dialog", lambda dialog: dialog.accept())

        page.goto(f"{server.url}/signup")
        page.get_by_label("Organization name").fill("Acme")
        page.get_by_label("Your email").fill("owner@acme.test")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Create organization").click()
        page.get_by_role("link", name="Budgets").click()
        expect(page).to_have_url(re.compile(r"/budgets$"))
        page.get_by_label("Name", exact=True).fill("prod")
        page.get_by_label("Amount (US dollars)").fill("40")
        page.get_by_role("button", name="Create budget").click()
        expect(page.get_by_role("status")).to_have_text("Budget created.")

        budget_id = str(page.locator("article.budget").get_attribute("data-budget"))
        rt = server.runtime
        org_id = server.call(_org_of(rt, budget_id))
        server.call(record_spend(rt, budget_id, server.call(period_of(rt, org_id, "monthly")), 30_000_000))
        page.reload()
        expect(page.get_by_test_id("spend")).to_have_text("$30.00 / $40.00 (75%)")
        assert 0.70 < _filled(page, OK) < 0.80
        # nothing wider than the phone: no sideways scrolling
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        page.get_by_text("Edit prod").click()
        page.get_by_label("Amount (US dollars)").nth(1).fill("30")
        page.get_by_role("button", name="Save changes").click()
        expect(page.get_by_role("status")).to_have_text("Budget saved.")
        expect(page.get_by_text("Cap reached: requests under this budget are refused")).to_be_visible()
        assert _filled(page, FULL) > 0.97

        page.get_by_role("button", name="Delete budget prod").click()
        expect(page.get_by_role("status")).to_have_text("Budget deleted.")
        expect(page.get_by_text("No budgets yet.")).to_be_visible()
        assert reports == []
    finally:
        context.close()
        server.stop()


async def _org_of(rt: Services, budget_id: str) -> str:
    async with rt.db.session() as session:
        budget = await session.get(Budget, budget_id)
    assert budget is not None
    return budget.org_id
