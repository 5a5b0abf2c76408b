"""Every page an owner reaches, in Chromium under the real Content-Security-Policy.

The policy forbids inline styles, inline scripts and event-handler attributes, so a
template that slips one in breaks silently in production: the browser just drops it
and logs a violation. This walk fails on any such report, and checks that what the
inline code used to do still happens (the meters' widths, the copy button, the
confirmation dialog, the post-Checkout poll, the redirects to Stripe's pages).
"""

from __future__ import annotations

import re
import struct
import zlib
from typing import Any

from playwright.sync_api import Page, expect

from tests.dashboard.conftest import Site
from tests.dashboard.forms import PASSWORD
from tests.dashboard.test_browser import _meter, _sign_up

# init scripts run outside the page's policy; each violation the page raises is echoed
# to the console, where the browser's own "Content Security Policy" messages also land
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("securitypolicyviolation: " + e.violatedDirective + " blocked " + e.blockedURI +
    " on " + location.pathname);
});
"""

OK = (0x3F, 0x37, 0xC9)  # --ok in app.css
FULL = (0xB4, 0x23, 0x18)  # --full


def _png_rows(png: bytes) -> tuple[int, list[bytes]]:
    """(bytes per pixel, unfiltered rows) of an 8-bit, non-interlaced RGB(A) PNG, as Chromium writes."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, data, width, height, bpp = 8, b"", 0, 0, 0
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            data += body
        pos += 12 + length
    raw, stride = zlib.decompress(data), width * bpp
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, up_left = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return bpp, rows


def filled_share(page: Page, name: str, colour: tuple[int, int, int]) -> float:
    """The share of the meter's bar painted in `colour`, read off a screenshot of it."""
    bpp, rows = _png_rows(_meter(page, name).locator("meter").screenshot())
    middle = rows[len(rows) // 2]
    pixels = [middle[i : i + 3] for i in range(0, len(middle), bpp)]
    painted = sum(1 for p in pixels if sum(abs(a - b) for a, b in zip(p, colour, strict=True)) < 40)
    return painted / len(pixels)


def test_every_owner_page_runs_under_the_csp_with_meters_scripts_and_stripe_redirects_working(
    chromium: Any, site: Site
) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    context.add_init_script(REPORT_VIOLATIONS)
    page = context.new_page()
    reports: list[str] = []
    errors: list[str] = []

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text or "securitypolicyviolation" in message.text:
            reports.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    visited: list[str] = []

    def seen(path: str) -> None:
        expect(page).to_have_url(re.compile(re.escape(site.url + path)))
        assert page.evaluate("document.documentElement.classList.contains('js')"), "app.js did not run"
        assert reports == [] and errors == [], (path, reports, errors)
        visited.append(path)

    # signup, then out and back in through the login page
    page.goto(f"{site.url}/signup")
    seen("/signup")
    _sign_up(page, site)
    seen("/settings/billing")
    page.get_by_role("button", name="Log out").click()
    seen("/login")
    page.get_by_label("Email").fill("owner@acme.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    seen("/settings/billing")
    # the meters are drawn without a style attribute: nothing used is an empty bar
    assert filled_share(page, "monthly_requests", OK) < 0.02

    page.get_by_role("link", name="Projects").click()
    page.get_by_label("Name", exact=True).fill("web")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("status")).to_have_text("Project created.")
    seen("/projects")

    # a key: its meter a third full, the copy button copies, revoking asks first
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name", exact=True).fill("production")
    page.get_by_role("button", name="Create API key").click()
    secret = page.locator("#new-secret").input_value()
    assert secret.startswith("mlx_sk_")
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    assert 0.30 < filled_share(page, "api_keys", OK) < 0.37  # 1 of 3
    questions: list[str] = []

    def refuse(dialog: Any) -> None:
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", refuse)
    page.get_by_role("button", name="Revoke key production").click()
    expect(page.get_by_role("button", name="Revoke key production")).to_be_visible()
    assert questions == ["Revoke production? Calls with it stop working at once."]
    seen("/api-keys")

    for link, path in [("Providers", "/providers"), ("Routing", "/routing-configs")]:
        page.get_by_role("link", name=link).click()
        seen(path)
    page.get_by_role("link", name="Management keys").click()
    page.get_by_label("Name", exact=True).fill("ci")
    page.get_by_role("button", name="Create management key").click()
    expect(page.locator("#new-secret")).to_have_value(re.compile(r"^mlx_mk_"))
    seen("/management-keys")

    # the one project of Free fills its meter, in the full colour
    page.get_by_role("link", name="Billing").click()
    assert filled_share(page, "projects", FULL) > 0.97
    seen("/settings/billing")

    # back from Checkout before the subscription exists: the banner polls the status (a fetch)
    with page.expect_response(re.compile(r"/settings/billing/status$")) as polled:
        page.goto(f"{site.url}/settings/billing?checkout=success")
    assert polled.value.json()["has_subscription"] is False
    seen("/settings/billing?checkout=success")

    # Upgrade posts to us and is redirected to Stripe's Checkout page: form-action must allow it
    page.goto(f"{site.url}/settings/billing")
    page.get_by_test_id("plan-pro").get_by_role("button", name="Upgrade to Pro").click()
    expect(page).to_have_url(re.compile(re.escape(site.emu.base_url) + "/checkout/"))
    page.locator("#pay").click()
    expect(page.get_by_test_id("current-plan")).to_have_text("Pro")
    site.emu.wait_for_webhooks()
    reports.clear()  # the emulator's own pages are not ours to judge
    page.goto(f"{site.url}/settings/billing")
    assert 0.17 < filled_share(page, "projects", OK) < 0.23  # 1 of Pro's 5
    seen("/settings/billing")

    page.get_by_test_id("plan-team").get_by_role("link", name="Upgrade to Team").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Upgrade to Team?")
    seen("/settings/billing/change?plan=team")

    page.goto(f"{site.url}/settings/billing/invoices")
    expect(page.get_by_test_id("invoice-row")).to_have_count(1)
    seen("/settings/billing/invoices")

    # and the portal, the other form answered with a redirect to Stripe
    page.goto(f"{site.url}/settings/billing")
    page.get_by_role("button", name=re.compile("Manage payment method")).click()
    expect(page).to_have_url(re.compile(re.escape(site.emu.base_url) + "/portal/"))
    assert reports == [] and errors == [], (reports, errors)

    # the watch itself works: an inline style is reported
    page.goto(f"{site.url}/projects")
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color: red\">x</p>')")
    for _ in range(40):
        if reports:
            break
        page.wait_for_timeout(50)
    assert any("style-src" in r for r in reports), reports
    assert len(visited) == 14
    context.close()
