"""The Audit log page in Chromium: locked on Free with the pointer to Team, then, on Team,
the history from before the upgrade with each change's diff, filters and a CSV download."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from modelux_server.models import Organization
from tests.support.phone import signed_up_on_a_phone
from tests.support.plans import move_to


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_audit_log_page_is_locked_then_shows_the_history(
    chromium: Any, settings: Settings, clock: FrozenClock
) -> None:
    with signed_up_on_a_phone(chromium, settings, clock, "Hooli", "gavin@hooli.test") as (server, page):
        page.get_by_role("link", name="Audit log").click()
        expect(page.get_by_test_id("audit-locked")).to_contain_text("does not include audit log")
        expect(page.get_by_test_id("audit-upgrade")).to_have_text("See the Team plan")
        assert page.get_by_test_id("audit-upgrade").get_attribute("href", timeout=5000).endswith("plan=team")

        async def org_id(rt: Any) -> str:
            from sqlalchemy import select

            async with rt.db.session() as session:
                return str((await session.scalars(select(Organization.id))).one())

        found = server.call(org_id)
        server.call(move_to(server.runtime, found, "team"))

        page.reload()
        events = page.get_by_test_id("audit-event")
        expect(events.first).to_contain_text("plan.changed")
        plan_change = events.filter(has_text="plan.changed")
        plan_change.get_by_text("Changes").click()
        expect(plan_change.locator("table.diff")).to_contain_text('"free"')
        expect(plan_change.locator("table.diff")).to_contain_text('"team"')

        page.get_by_label("Action").select_option("plan.changed")
        page.get_by_role("button", name="Filter").click()
        expect(page).to_have_url(re.compile(r"action=plan.changed"))
        expect(events).to_have_count(1)

        href = page.get_by_test_id("export-csv").get_attribute("href") or ""
        assert href.startswith("/audit-log/export.csv?action=plan.changed")
        download = page.request.get(f"{server.url}{href}")
        assert download.status == 200 and download.headers["content-type"].startswith("text/csv")
        lines = download.text().strip().splitlines()
        assert lines[0].startswith("id,seq,created_at") and len(lines) == 2 and "plan.changed" in lines[1]

        # the access review is Enterprise's: on Team the page says where it is
        review = page.request.get(f"{server.url}{page.get_by_test_id('access-review').get_attribute('href')}")
        assert review.status == 402
        assert "Enterprise" in review.text() and "access review export" in review.text()
