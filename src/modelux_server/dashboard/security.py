"""Cookies and CSRF for the dashboard.

* The session cookie holds an opaque token (see auth/sessions.py): HttpOnly,
  SameSite=Lax, Secure whenever the public URL is https.
* Every unsafe request carries a CSRF token in a hidden `csrf_token` field.
  Logged in, the token is an HMAC of the session, so it needs no storage
  and dies with the session. Before login (the login and signup forms), it
  is an HMAC of a random pre-session cookie: the double-submit pattern,
  signed so a cookie planted by a sibling subdomain cannot forge a match.
* The Content-Security-Policy's `form-action` names where our form posts
  are redirected (`form_targets`); the headers themselves are set for every
  answer by kit/security_headers.py.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request, Response

from modelux_server.auth.sessions import TTL, Viewer
from modelux_server.config import Settings
from modelux_server.services import Services

SESSION_COOKIE = "mlx_session"
PRE_COOKIE = "mlx_pre"
CSRF_FIELD = "csrf_token"


# Checkout and the customer portal: the Upgrade and "Manage payment method" forms
# post to us and we answer 303 to one of these, which browsers check against
# form-action like the post itself
STRIPE_PAGES = ("https://checkout.stripe.com", "https://billing.stripe.com")


def form_targets(settings: Settings) -> tuple[str, ...]:
    """Origins besides ours that a dashboard form submission may end up on."""
    if settings.billing_mode != "stripe":
        return ()
    if settings.stripe_api_base:
        # a Stripe stand-in (the test emulator) serves its Checkout and portal pages itself
        base = urlsplit(settings.stripe_api_base)
        return (*STRIPE_PAGES, f"{base.scheme}://{base.netloc}")
    return STRIPE_PAGES


class CsrfFailed(Exception):
    """A POST without the right token: answered with a 403 page."""


class LoginRequired(Exception):
    """No valid session: answered with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def _key(rt: Services) -> bytes:
    return rt.keys.for_purpose("dashboard-csrf")


def _sign(rt: Services, message: str) -> str:
    return hmac.new(_key(rt), message.encode(), hashlib.sha256).hexdigest()


def session_csrf(rt: Services, viewer: Viewer) -> str:
    return _sign(rt, "session|" + viewer.token_hash)


def pre_session_value(request: Request) -> tuple[str, bool]:
    """The pre-session cookie value, and whether it must be (re)set."""
    value = request.cookies.get(PRE_COOKIE, "")
    if len(value) >= 32:
        return value, False
    return secrets.token_urlsafe(32), True


def pre_session_csrf(rt: Services, value: str) -> str:
    return _sign(rt, "pre|" + value)


def check_token(expected: str, form_value: object) -> None:
    if not isinstance(form_value, str) or not hmac.compare_digest(expected, form_value):
        raise CsrfFailed()


def _secure(rt: Services) -> bool:
    return rt.public_url.startswith("https://")


def set_session_cookie(response: Response, rt: Services, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=_secure(rt),
        path="/",
    )


def clear_session_cookie(response: Response, rt: Services) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(rt))


def set_pre_cookie(response: Response, rt: Services, value: str) -> None:
    response.set_cookie(
        PRE_COOKIE, value, max_age=3600, httponly=True, samesite="lax", secure=_secure(rt), path="/"
    )
