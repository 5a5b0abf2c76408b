"""Pages opened from emailed links: accepting an invitation, confirming an email.

A link only shows a page; what it grants happens on the POST of that page's
form, so a mail scanner that prefetches links accepts or confirms nothing.
The forms work logged in (session CSRF token) and logged out (pre-session
token), because people open these links from either state.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.exc import IntegrityError

from modelux_server.auth import limits
from modelux_server.auth.login import Rejected, check_password
from modelux_server.auth.sessions import Viewer, close_session, open_session
from modelux_server.dashboard import security, web
from modelux_server.dashboard.auth_pages import MIN_PASSWORD, _anonymous_page, _logged_in
from modelux_server.errors import ModeluxError, RateLimited, ValidationFailed
from modelux_server.member import invitations
from modelux_server.models import Organization, User
from modelux_server.organization import verification

router = APIRouter(include_in_schema=False)

UNUSABLE = {
    "unknown": (404, "This invitation link is not valid. Check that it was copied whole."),
    "expired": (410, "This invitation has expired."),
    "revoked": (410, "This invitation was withdrawn."),
    "accepted": (410, "This invitation was already accepted."),
}
RESEND = limits.Limit("verify-email-resend", 5, limits.KEEP)


def _page(
    request: Request, viewer: Viewer | None, name: str, *, status: int = 200, **context: Any
) -> HTMLResponse:
    """The page, its form signed with the session's CSRF token or a pre-session one."""
    if viewer is not None:
        return web.page(request, name, viewer, status=status, **context)
    return _anonymous_page(request, name, status=status, **context)


async def _checked(request: Request, viewer: Viewer | None) -> dict[str, str]:
    rt = web.runtime(request)
    form = await request.form()
    if viewer is not None:
        expected = security.session_csrf(rt, viewer)
    else:
        value = request.cookies.get(security.PRE_COOKIE, "")
        if not value:
            raise security.CsrfFailed()
        expected = security.pre_session_csrf(rt, value)
    security.check_token(expected, form.get(security.CSRF_FIELD))
    return {k: v for k, v in form.items() if isinstance(v, str)}


# ------------------------------------------------------------------ invitations


async def _invitation_page(
    request: Request, viewer: Viewer | None, token: str, *, status: int = 200, **extra: Any
) -> HTMLResponse:
    rt = web.runtime(request)
    async with rt.db.session() as session:
        try:
            offer = await invitations.offer(session, rt, token)
        except invitations.Unusable as exc:
            code, reason = UNUSABLE[exc.reason]
            return _page(request, viewer, "invitation.html", status=code, state="unusable", reason=reason)
    invitation = offer.invitation
    if viewer is not None:
        state = "confirm" if viewer.email == invitation.email else "wrong_account"
    else:
        state = "log_in" if offer.account is not None else "new_account"
    context: dict[str, Any] = {
        "state": state,
        "org_name": offer.org_name,
        "role": invitation.role,
        "email": invitation.email,
        "token": token,
        "full_name": "",
    }
    context.update(extra)
    return _page(request, viewer, "invitation.html", status=status, **context)


@router.get("/invitations/accept")
async def invitation_form(request: Request) -> Response:
    viewer = await web.optional_viewer(request)
    return await _invitation_page(request, viewer, request.query_params.get("token", ""))


@router.post("/invitations/accept")
async def accept_invitation(request: Request) -> Response:
    rt = web.runtime(request)
    viewer = await web.optional_viewer(request)
    form = await _checked(request, viewer)
    token, name, password = form.get("token", ""), form.get("name", "").strip(), form.get("password", "")
    refused: Rejected | None = None
    try:
        async with rt.db.session() as session:
            membership = None
            if viewer is not None:
                membership = await invitations.accept_as(session, rt, token, viewer.user_id)
                # the new session opens in the organization just joined
                await close_session(session, rt, request.cookies.get(security.SESSION_COOKIE))
            elif (offer := await invitations.offer(session, rt, token)).account is not None:
                # the address has an account: its password, under the login limits, stands for logging in
                checked = await check_password(
                    session,
                    rt,
                    email=offer.invitation.email,
                    password=password,
                    client=web.client_address(request),
                )
                if isinstance(checked, Rejected):
                    refused = checked
                else:
                    membership = await invitations.accept_as(session, rt, token, checked.id)
            else:
                if len(password) < MIN_PASSWORD:
                    raise ValidationFailed(f"Choose a password of at least {MIN_PASSWORD} characters.")
                if len(name) > 200 or not name.isprintable():
                    raise ValidationFailed("A name is at most 200 printable characters.", param="name")
                _, membership = await invitations.accept_with_new_account(
                    session, rt, token, name=name or None, password=password
                )
            if membership is not None:
                session_token = await open_session(
                    session, rt, user_id=membership.user_id, org_id=membership.org_id
                )
    except invitations.Unusable as exc:
        code, reason = UNUSABLE[exc.reason]
        return _page(request, viewer, "invitation.html", status=code, state="unusable", reason=reason)
    except IntegrityError:
        # the same address accepted another invitation at the same instant
        problem = {"message": "This invitation was accepted at the same moment elsewhere. Reload the page."}
        return await _invitation_page(request, viewer, token, status=409, problem=problem)
    except ModeluxError as exc:
        return await _invitation_page(
            request, viewer, token, status=exc.status, problem=web.problem(exc), full_name=name
        )
    if refused is not None:
        if refused.reason == "rate_limited":
            problem = {"message": "Too many failed attempts. Wait 15 minutes, then try again."}
            response = await _invitation_page(request, viewer, token, status=429, problem=problem)
            response.headers["Retry-After"] = str(refused.retry_after)
            return response
        problem = {"message": "Wrong password for this address.", "code": "invalid_login"}
        return await _invitation_page(request, viewer, token, status=401, problem=problem)
    return _logged_in(request, session_token, "/settings/billing?notice=joined")


# ------------------------------------------------------------------ email confirmation


async def _verified(request: Request, viewer: Viewer) -> bool:
    rt = web.runtime(request)
    async with rt.db.session() as session:
        user = await session.get(User, viewer.user_id)
        return user is not None and user.email_verified_at is not None


@router.get("/verify-email")
async def verify_email_form(request: Request) -> Response:
    viewer = await web.optional_viewer(request)
    token = request.query_params.get("token")
    if token:
        return _page(request, viewer, "verify_email.html", state="confirm", token=token)
    if viewer is None:
        return web.login_redirect("/verify-email")
    state = "verified" if await _verified(request, viewer) else "pending"
    notice = (
        "We sent a new link; it can take a minute to arrive." if request.query_params.get("sent") else None
    )
    return _page(request, viewer, "verify_email.html", state=state, notice=notice)


@router.post("/verify-email")
async def verify_email(request: Request) -> Response:
    rt = web.runtime(request)
    viewer = await web.optional_viewer(request)
    form = await _checked(request, viewer)
    try:
        async with rt.db.session() as session:
            await verification.confirm(session, rt, form.get("token", ""))
    except verification.InvalidLink:
        return _page(request, viewer, "verify_email.html", status=400, state="invalid")
    notice = "Your email address is confirmed."
    return _page(request, viewer, "verify_email.html", state="verified", notice=notice)


@router.post("/verify-email/resend")
async def resend_verification(request: Request) -> Response:
    rt = web.runtime(request)
    viewer = await web.current_viewer(request)
    await _checked(request, viewer)
    async with rt.db.session() as session:
        user = await session.get(User, viewer.user_id)
        org = await session.get(Organization, viewer.org_id)
        if user is None or org is None or user.email_verified_at is not None:
            return web.see_other("/verify-email")
        now = rt.clock.now()
        wait = await limits.retry_after(session, RESEND, user.id, now)
        if wait is None:
            await limits.record(session, [(RESEND, user.id)], now)
            await verification.send_link(session, rt, user, org)
    if wait is not None:
        error = RateLimited("Several links were sent in the last hour. Use the newest one, or try later.")
        return _page(
            request, viewer, "verify_email.html", status=429, state="pending", problem=web.problem(error)
        )
    return web.see_other("/verify-email?sent=1")
