"""Sign up (Free, no card), log in, log out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from modelux_server.auth.login import Admitted, Rejected, log_in
from modelux_server.auth.sessions import close_session, open_session
from modelux_server.dashboard import security, web
from modelux_server.errors import ModeluxError, ValidationFailed
from modelux_server.organization.signup import sign_up
from modelux_server.services import services_of

router = APIRouter(include_in_schema=False)


def _anonymous_page(request: Request, name: str, *, status: int = 200, **context: object) -> HTMLResponse:
    """A page with a pre-session CSRF token (login and signup have no session yet)."""
    rt = services_of(request)
    value, fresh = security.pre_session_value(request)
    response = web.page(
        request, name, None, status=status, pre_csrf=security.pre_session_csrf(rt, value), **context
    )
    if fresh:
        security.set_pre_cookie(response, rt, value)
    return response


async def _anonymous_form(request: Request) -> dict[str, str]:
    rt = services_of(request)
    form = await request.form()
    value = request.cookies.get(security.PRE_COOKIE, "")
    if not value:
        raise security.CsrfFailed()
    security.check_token(security.pre_session_csrf(rt, value), form.get(security.CSRF_FIELD))
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _logged_in(request: Request, token: str, target: str) -> Response:
    response = web.see_other(target)
    security.set_session_cookie(response, services_of(request), token)
    return response


@router.get("/signup")
async def signup_form(request: Request) -> Response:
    if await web.optional_viewer(request) is not None:
        return web.see_other("/settings/billing")
    return _anonymous_page(request, "signup.html", fields={})


@router.post("/signup")
async def signup(request: Request) -> Response:
    rt = services_of(request)
    form = await _anonymous_form(request)
    fields = {"org_name": form.get("org_name", ""), "email": form.get("email", "")}
    password = form.get("password", "")
    try:
        async with rt.db.session() as session:
            created = await sign_up(
                session,
                rt,
                org_name=fields["org_name"],
                email=fields["email"],
                password=password,
                client=web.client_address(request),
            )
            token = await open_session(session, rt, user_id=created.owner.id, org_id=created.org.id)
    except ModeluxError as exc:
        response = _anonymous_page(
            request, "signup.html", status=exc.status, fields=fields, problem=web.problem(exc)
        )
        response.headers.update(exc.headers)
        return response
    welcome = "welcome_verify" if rt.settings.email_verification_required else "welcome"
    return _logged_in(request, token, f"/settings/billing?notice={welcome}")


@router.get("/login")
async def login_form(request: Request) -> Response:
    next_path = web.safe_next(request.query_params.get("next"))
    if await web.optional_viewer(request) is not None:
        return web.see_other(next_path)
    return _anonymous_page(request, "login.html", email="", next_path=next_path)


@router.post("/login")
async def login(request: Request) -> Response:
    rt = services_of(request)
    form = await _anonymous_form(request)
    email, next_path = form.get("email", ""), web.safe_next(form.get("next"))
    try:
        async with rt.db.session() as session:
            result = await log_in(
                session,
                rt,
                email=email,
                password=form.get("password", ""),
                client=web.client_address(request),
            )
            token = None
            if isinstance(result, Admitted):
                token = await open_session(
                    session, rt, user_id=result.user.id, org_id=result.membership.org_id
                )
    except ValidationFailed as exc:
        # text no account can hold: the field is not shown back
        return _anonymous_page(
            request, "login.html", status=exc.status, email="", next_path=next_path, problem=web.problem(exc)
        )
    if isinstance(result, Admitted) and token is not None:
        return _logged_in(request, token, next_path)
    if isinstance(result, Rejected) and result.reason == "rate_limited":
        where = "for this email" if result.per == "email" else "from your network"
        message = f"Too many failed attempts {where}. Wait 15 minutes, then try again."
        response = _anonymous_page(
            request,
            "login.html",
            status=429,
            email=email,
            next_path=next_path,
            problem={"message": message, "code": "too_many_login_attempts"},
        )
        response.headers["Retry-After"] = str(result.retry_after)
        return response
    return _anonymous_page(
        request,
        "login.html",
        status=401,
        email=email,
        next_path=next_path,
        problem={"message": "Wrong email or password.", "code": "invalid_login"},
    )


@router.post("/logout")
async def logout(request: Request) -> Response:
    rt = services_of(request)
    viewer = await web.optional_viewer(request)
    if viewer is not None:
        await web.checked_form(request, viewer)
        async with rt.db.session() as session:
            await close_session(session, rt, request.cookies.get(security.SESSION_COOKIE))
    response = web.see_other("/login")
    security.clear_session_cookie(response, rt)
    return response
