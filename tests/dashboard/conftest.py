"""The browser side: Debian's Chromium driven by Playwright against a live server.

The live server runs in Stripe mode against the Stripe emulator, so Checkout
is a real redirect to the emulator's payment page and back, and the plan
changes when the emulator's webhook lands. Browser tests run on SQLite only;
the same pages are exercised on both databases by test_forms.py.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelux_server.billing.stripe.catalog_push import sync_catalog
from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from tests.billing.stripe_world import API_KEY, JAN_10_2026, WEBHOOK_SECRET, when
from tests.support import databases
from tests.support.live_server import LiveServer
from tests.support.stripe_emulator import StripeEmulator

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "billing.png"


@dataclass
class Site:
    server: LiveServer
    emu: StripeEmulator

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def site(tmp_path: Path, sqlite_template: Path) -> Iterator[Site]:
    emu = StripeEmulator(webhook_secret=WEBHOOK_SECRET, api_key=API_KEY, start_time=JAN_10_2026)
    emu.start()
    settings = Settings(
        database_url=databases.sqlite_copy(sqlite_template, tmp_path),
        data_dir=tmp_path / "data",
        secret_key="test-secret-key",
        workers_enabled=False,
        stripe_secret_key=emu.api_key,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=emu.base_url,
    )
    server = LiveServer(settings, clock=FrozenClock(when(emu.now())))
    # the port is only known once the server has bound it; Checkout's return
    # URLs are built from the public URL, so it must point at this server
    settings.public_url = server.url
    server.start()
    emu.webhook_url = f"{server.url}/webhooks/stripe"
    try:
        server.call(lambda rt: sync_catalog(rt, rt.billing))
        emu.wait_for_webhooks()
        yield Site(server, emu)
    finally:
        server.stop()
        emu.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if databases.IN_CI:
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium) and CI=true")
        pytest.skip("Chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


class Shots:
    """Numbered screenshots of each step, for people to look at after a run."""

    def __init__(self, name: str) -> None:
        self.folder = ARTIFACTS / name
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.count = 0

    def take(self, page: Any, step: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def publish(self, path: Path) -> None:
        """Copy one screenshot into the docs when asked to (it is committed)."""
        if os.environ.get("MODELUX_UPDATE_DOCS_SCREENSHOT") == "1":
            DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_IMAGE)
