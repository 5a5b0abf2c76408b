"""Headers every answer carries, whatever route made it.

One fixed set for every answer (dashboard pages, error pages, static files,
JSON APIs, the proxy): a browser ignores the page-only ones on JSON, and one
precomputed tuple costs the proxy's hot path nothing but a list append. The
only decision made per request is whether the answer travelled over TLS.

* `Content-Security-Policy`: our own scripts, styles and images only, no
  inline code of any kind (no `unsafe-inline`, no `unsafe-eval`), so an
  escaping bug in a template cannot become script. `frame-ancestors 'none'`
  (and `X-Frame-Options: DENY` for older browsers) keeps the billing buttons
  from being clickjacked. `form-action` lists our origin plus the places our
  own form posts are redirected to (Stripe Checkout and the customer portal):
  browsers check `form-action` against every redirect a submission follows,
  so without them the "Upgrade" and "Manage payment method" buttons would
  stop at our 303.
* `Referrer-Policy: same-origin`: dashboard URLs may carry an invitation,
  email-verification or Checkout return token; `strict-origin-when-cross-origin`
  would still tell Stripe and every linked site which host runs the dashboard,
  and no outside page needs to know where a visitor came from.
* `Strict-Transport-Security` only over TLS (the request came in as https,
  which uvicorn sets from `X-Forwarded-Proto` for trusted proxies only, or the
  public URL is https). No `includeSubDomains`: the operator's other hosts are
  not ours to pin.
* `Cross-Origin-Opener-Policy: same-origin`: no page another site opened keeps
  a handle on our windows. `Permissions-Policy` turns off powerful features
  the dashboard never uses (the copy button's clipboard write stays allowed).
* `X-Content-Type-Options: nosniff`: an upstream's or a tenant's text is
  never run as HTML or script.

A 500 answer is written outside the middleware stack (Starlette's server
error middleware wraps it), so its handler asks `SecurityPolicy.for_scope`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Header = tuple[bytes, bytes]

PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
HSTS: Header = (b"strict-transport-security", b"max-age=31536000")


def content_security_policy(form_targets: Iterable[str] = ()) -> str:
    """The policy, with `form_targets` (origins) allowed as form destinations besides ours."""
    form_action = " ".join(("'self'", *form_targets))
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"form-action {form_action}",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "object-src 'none'",
        )
    )


class SecurityPolicy:
    """The headers for an answer: `plain` always, `tls` (plain and HSTS) when it went over TLS.

    `public_url` is read per request rather than once: the public URL may be
    settled only when the server has bound its port.
    """

    def __init__(self, *, public_url: Callable[[], str], form_targets: Iterable[str] = ()) -> None:
        self.public_url = public_url
        self.plain: tuple[Header, ...] = (
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"content-security-policy", content_security_policy(form_targets).encode()),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", PERMISSIONS_POLICY.encode()),
        )
        self.tls: tuple[Header, ...] = (*self.plain, HSTS)

    def for_scope(self, scope: Scope) -> tuple[Header, ...]:
        if scope.get("scheme") == "https" or self.public_url().startswith("https://"):
            return self.tls
        return self.plain


class SecurityHeaders:
    def __init__(self, app: ASGIApp, policy: SecurityPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = self.policy.for_scope(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)
