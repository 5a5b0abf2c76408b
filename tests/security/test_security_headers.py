"""Security headers on every answer, HSTS only over TLS, and cookies Secure only with an https public URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelux_server.app import create_app
from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from tests.conftest import make_org
from tests.dashboard.forms import post_form, sign_up
from tests.support import databases
from tests.support.serve_process import ServeProcess

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
PAGE_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}
HSTS = "max-age=31536000"


def assert_security_headers(r: httpx.Response, *, hsts: bool) -> None:
    for name, value in PAGE_HEADERS.items():
        assert r.headers.get_list(name) == [value], (r.request.url, name)
    assert r.headers.get_list("strict-transport-security") == ([HSTS] if hsts else []), r.request.url


@pytest.fixture
async def http_app(settings: Settings, clock: FrozenClock) -> AsyncIterator[Any]:
    """The app with a plain-http public URL: a development setup without TLS."""
    application = create_app(settings.model_copy(update={"public_url": "http://modelux.test"}), clock=clock)
    async with application.router.lifespan_context(application):
        yield application


def _client(app: Any, scheme: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"{scheme}://modelux.test")


async def _answers(app: Any, scheme: str) -> list[httpx.Response]:
    """A dashboard page before and after login, the CSRF error page, JSON answers, a static file."""
    org = await make_org(app.state.services, name="Other", email="other@other.test")
    async with _client(app, scheme) as client:
        answers = [await client.get("/login")]
        await sign_up(client)
        answers += [
            await client.get("/settings/billing"),
            await client.get("/settings/billing/change?plan=pro"),  # 409 page: no payment processor
            await client.get("/projects"),
            await post_form(client, "/projects", "/projects/create", {"name": "web"}),
            await client.post("/projects/create", data={"name": "forged"}),  # the 403 error page
            await client.get("/static/app.css"),
            await client.get("/manage/v1/projects", headers={"Authorization": f"Bearer {org.key}"}),
            await client.get("/manage/v1/projects"),  # 401 JSON
            await client.get("/no/such/page"),  # 404 JSON
            await client.post("/v1/chat/completions", json={}),  # the proxy's JSON error
            await client.get("/healthz"),
        ]
    statuses = [r.status_code for r in answers]
    assert statuses == [200, 200, 409, 200, 303, 403, 200, 200, 401, 404, 401, 200], statuses
    assert "did not come from this site" in answers[5].text
    return answers


async def test_pages_error_pages_and_json_answers_carry_the_headers_and_hsts_with_an_https_public_url(
    app: Any,
) -> None:
    for r in await _answers(app, "https"):
        assert_security_headers(r, hsts=True)
    # the public URL is https (the shared test settings): HSTS even on an answer that left us
    # as http (TLS ended at a proxy that is not among the trusted ones)
    async with _client(app, "http") as client:
        for path in ("/login", "/manage/v1/projects", "/healthz"):
            assert_security_headers(await client.get(path), hsts=True)


async def test_no_hsts_over_plain_http_with_an_http_public_url(http_app: Any) -> None:
    for r in await _answers(http_app, "http"):
        assert_security_headers(r, hsts=False)


async def test_hsts_when_the_request_itself_came_over_tls(http_app: Any) -> None:
    async with _client(http_app, "https") as client:
        assert_security_headers(await client.get("/login"), hsts=True)
        assert_security_headers(await client.get("/healthz"), hsts=True)


async def test_an_unexpected_500_still_carries_the_headers(http_app: Any) -> None:
    @http_app.get("/test-only/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    transport = httpx.ASGITransport(app=http_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://modelux.test") as client:
        r = await client.get("/test-only/boom")
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    assert_security_headers(r, hsts=True)


def _cookies(r: httpx.Response) -> dict[str, str]:
    return {c.split("=", 1)[0]: c for c in r.headers.get_list("set-cookie")}


async def _session_cookies(app: Any) -> list[str]:
    """Every cookie the dashboard sets: pre-session, session at signup and login, cleared at logout."""
    async with _client(app, "https") as client:  # https, so the client sends Secure cookies back
        pre = _cookies(await client.get("/signup"))["mlx_pre"]
        signed_up = _cookies(await sign_up(client))["mlx_session"]
        logged_out = _cookies(await post_form(client, "/settings/billing", "/logout", {}))["mlx_session"]
        assert 'mlx_session=""' in logged_out  # really the clearing cookie
        logged_in = _cookies(
            await post_form(
                client, "/login", "/login", {"email": "owner@acme.test", "password": "correct horse battery"}
            )
        )["mlx_session"]
    return [pre, signed_up, logged_out, logged_in]


async def test_cookies_are_secure_with_an_https_public_url(app: Any) -> None:
    for cookie in await _session_cookies(app):
        attributes = [a.strip().lower() for a in cookie.split(";")]
        assert "secure" in attributes and "httponly" in attributes and "samesite=lax" in attributes, cookie


async def test_cookies_are_not_secure_with_an_http_public_url(http_app: Any) -> None:
    # a browser drops a Secure cookie set over http: a plain-http setup could never log in
    for cookie in await _session_cookies(http_app):
        attributes = [a.strip().lower() for a in cookie.split(";")]
        assert "secure" not in attributes and "httponly" in attributes and "samesite=lax" in attributes, (
            cookie
        )


async def test_stripe_checkout_and_the_portal_are_allowed_form_destinations_only_with_stripe(
    settings: Settings,
) -> None:
    # the Upgrade and "Manage payment method" forms post to us and are answered 303 to Stripe
    stripe = settings.model_copy(
        update={"stripe_secret_key": "sk_test_x", "stripe_webhook_secret": "whsec_x"}
    )
    for configured, form_action in [
        (settings, "form-action 'self';"),
        (stripe, "form-action 'self' https://checkout.stripe.com https://billing.stripe.com;"),
    ]:
        async with _client(create_app(configured), "https") as client:
            r = await client.get("/healthz")
        assert form_action in r.headers["content-security-policy"]


@pytest.mark.parametrize(("trusted", "hsts"), [("127.0.0.1", True), ("", False)])
def test_a_trusted_proxys_forwarded_https_turns_on_hsts_and_nobody_elses_does(
    tmp_path: Path, sqlite_template: Path, trusted: str, hsts: bool
) -> None:
    env = {
        "MODELUX_DATABASE_URL": databases.sqlite_copy(sqlite_template, tmp_path),
        "MODELUX_DATA_DIR": str(tmp_path / "data"),
        "MODELUX_SECRET_KEY": "headers-test",
        "MODELUX_PUBLIC_URL": "http://127.0.0.1",
        "MODELUX_TRUSTED_PROXIES": trusted,
        "MODELUX_WORKERS_ENABLED": "false",
    }
    server = ServeProcess(env, tmp_path).start()
    try:
        plain = httpx.get(f"{server.url}/login")
        forwarded = httpx.get(f"{server.url}/login", headers={"X-Forwarded-Proto": "https"})
    finally:
        server.stop()
    assert_security_headers(plain, hsts=False)
    assert_security_headers(forwarded, hsts=hsts)
