"""`/docs` in Chromium, under the server's real Content-Security-Policy: styled, no violation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelux_server.config import Settings
from tests.dashboard.test_csp_browser import REPORT_VIOLATIONS
from tests.support import databases
from tests.support.live_server import LiveServer


@pytest.fixture
def server(tmp_path: Path, sqlite_template: Path) -> Iterator[LiveServer]:
    settings = Settings(
        database_url=databases.sqlite_copy(sqlite_template, tmp_path),
        data_dir=tmp_path / "data",
        secret_key="test-secret-key",
        workers_enabled=False,
    )
    with LiveServer(settings) as live:
        yield live


def test_the_api_reference_renders_styled_with_no_policy_violation(server: LiveServer, chromium: Any) -> None:
    page = chromium.new_page()
    problems: list[str] = []
    policy = ("Content Security Policy", "securitypolicyviolation")
    page.on("console", lambda m: problems.append(m.text) if any(p in m.text for p in policy) else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    # every file the page loads is there (the browser's own favicon guess aside)
    page.on(
        "response",
        lambda r: (
            problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    page.add_init_script(REPORT_VIOLATIONS)
    answer = page.goto(server.url + "/docs")
    assert answer is not None and answer.status == 200
    assert "'unsafe-inline'" not in (answer.headers.get("content-security-policy") or "unsafe-inline")
    # our stylesheet applied: a GET badge has its colour, the page its layout
    badge = page.locator(".method-get").first
    assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(29, 107, 69)"
    assert page.locator("body").evaluate("e => getComputedStyle(e).display") == "grid"
    # the anchors work: a body schema link leads to its schema
    page.locator('a[href="#model-ProjectCreate"]').first.click()
    assert page.evaluate("location.hash") == "#model-ProjectCreate"
    assert page.locator("#model-ProjectCreate").is_visible()
    assert problems == []
    page.close()
