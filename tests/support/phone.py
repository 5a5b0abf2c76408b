"""A dashboard in Chromium at a phone's width, on a live server, signed up as a new owner."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from playwright.sync_api import Page, expect

from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from tests.dashboard.forms import PASSWORD
from tests.support.live_server import LiveServer


def sign_up(page: Page, url: str, org: str, email: str) -> None:
    page.goto(f"{url}/signup")
    page.get_by_label("Organization name").fill(org)
    page.get_by_label("Your email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create organization").click()
    expect(page).not_to_have_url(re.compile(r"/signup"))


@contextmanager
def signed_up_on_a_phone(
    chromium: Any, settings: Settings, clock: FrozenClock, org: str, email: str
) -> Iterator[tuple[LiveServer, Page]]:
    """A server for `settings` and a page whose owner just created `org`."""
    settings = settings.model_copy()
    server = LiveServer(settings, clock=clock)
    settings.public_url = server.url  # the session cookie is Secure only on https
    server.start()
    context = chromium.new_context(viewport={"width": 390, "height": 844})
    try:
        context.set_default_timeout(15_000)
        page = context.new_page()
        sign_up(page, server.url, org, email)
        yield server, page
    finally:
        context.close()
        server.stop()
