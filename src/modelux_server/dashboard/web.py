"""What every dashboard handler needs: the viewer, checked forms, pages, redirects."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import FormData
from starlette.templating import Jinja2Templates

from modelux_server.auth.sessions import Viewer, resolve
from modelux_server.dashboard import security
from modelux_server.errors import ModeluxError
from modelux_server.kit.links import web_link
from modelux_server.notifications.messages import format_money
from modelux_server.services import services_of

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("modelux_server.dashboard", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates = Jinja2Templates(env=_env)


async def optional_viewer(request: Request) -> Viewer | None:
    rt = services_of(request)
    token = request.cookies.get(security.SESSION_COOKIE)
    if not token:
        return None
    async with rt.db.session() as session:
        return await resolve(session, rt, token)


async def current_viewer(request: Request) -> Viewer:
    """FastAPI dependency: the logged-in viewer, or a redirect to /login."""
    viewer = await optional_viewer(request)
    if viewer is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise security.LoginRequired(target)
    return viewer


async def checked_form(request: Request, viewer: Viewer) -> FormData:
    """The posted form, once its CSRF token matches this session."""
    form = await request.form()
    security.check_token(security.session_csrf(services_of(request), viewer), form.get(security.CSRF_FIELD))
    return form


def page(
    request: Request,
    name: str,
    viewer: Viewer | None,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    rt = services_of(request)
    base: dict[str, Any] = {
        "viewer": viewer,
        "csrf": security.session_csrf(rt, viewer) if viewer else "",
        "path": request.url.path,
        "problem": None,
        "notice": None,
    }
    base.update(context)
    response = templates.TemplateResponse(request, name, base, status_code=status)
    # pages show secrets once and per-organization data: never cache them
    response.headers["Cache-Control"] = "no-store"
    # the Content-Security-Policy and the other page headers: kit/security_headers.py
    return response


def see_other(url: str) -> RedirectResponse:
    """The redirect after a successful POST, so a reload never repeats it."""
    return RedirectResponse(url, status_code=303)


def login_redirect(next_path: str) -> RedirectResponse:
    return see_other("/login?next=" + quote(next_path, safe=""))


def safe_next(value: object) -> str:
    """Only same-site paths: `//evil.test` and absolute URLs fall back to the billing page."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/settings/billing"


def problem(exc: ModeluxError) -> dict[str, Any]:
    """The error as the template shows it: the contract body (message, upgrade link)."""
    body: dict[str, Any] = exc.body()["error"]
    return body


def client_address(request: Request) -> str:
    # the connection's peer, never a header read here: `modelux serve` lets
    # uvicorn replace it from X-Forwarded-For only for MODELUX_TRUSTED_PROXIES
    return request.client.host if request.client else "unknown"


# ---------------------------------------------------------------- formatting


def money(cents: int | None) -> str:
    if cents is None:
        return "Custom"
    dollars, rest = divmod(cents, 100)
    return f"${dollars:,}" if rest == 0 else f"${dollars:,}.{rest:02d}"


def number(value: int | None) -> str:
    return "Unlimited" if value is None else f"{value:,}"


def day(value: str | datetime | None) -> str:
    if value is None:
        return ""
    when = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ") if isinstance(value, str) else value
    return f"{when:%b} {when.day}, {when:%Y}"


def label(name: str) -> str:
    words = {"api_keys": "API keys", "sso": "SSO", "scim": "SCIM"}
    return words.get(name, name.replace("_", " ").capitalize())


def amount(cents: int, currency: str = "usd") -> str:
    """An invoice or proration amount, cents shown and negative amounts signed: `-$36.75`."""
    return format_money(cents, currency)


_env.filters.update(money=money, number=number, day=day, label=label, amount=amount, web_link=web_link)
