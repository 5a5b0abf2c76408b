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

from modelux_server.auth.login import Rejected
from modelux_server.auth.sessions import Viewer, close_session, open_session
from modelux_server.dashboard import security, web
from modelux_server.dashboard.auth_pages import _anonymous_page, _logged_in
from modelux_server.errors import ModeluxError, RateLimited
from modelux_server.member import invitations
from modelux_server.organization import verification
from modelux_server.services import services_of

router = APIRouter(include_in_schema=False)

UNUSABLE = {
    "unknown": (404, "This invitation link is not valid. Check that it was copied whole."),
    "expired": (410, "This invitation has expired."),
    "revoked": (410, "This invitation was withdrawn."),
    "accepted": (410, "This invitation was already accepted."),
}


def _page(
    request: Request, viewer: Viewer | None, name: str, *, status: int = 200, **context: Any
) -> HTMLResponse:
    """The page, its form signed with the session's CSRF token or a pre-session one."""
    if viewer is not None:
        return web.page(request, name, viewer, status=status, **context)
    return _anonymous_page(request, name, status=status, **context)


async def _checked(request: Request, viewer: Viewer | None) -> dict[str, str]:
    rt = services_of(request)
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
    rt = services_of(request)
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
    rt = services_of(request)
    viewer = await web.optional_viewer(request)
    form = await _checked(request, viewer)
    token, name, password = form.get("token", ""), form.get("name", "").strip(), form.get("password", "")
    session_token = ""
    try:
        async with rt.db.session() as session:
            accepted = await invitations.accept(
                session,
                rt,
                token,
                user_id=viewer.user_id if viewer is not None else None,
                password=password,
                name=name,
                client=web.client_address(request),
            )
            if not isinstance(accepted, Rejected):
                if viewer is not None:
                    # the new session opens in the organization just joined
                    await close_session(session, rt, request.cookies.get(security.SESSION_COOKIE))
                session_token = await open_session(
                    session, rt, user_id=accepted.user_id, org_id=accepted.org_id
                )
    except invitations.Unusable as exc:
        code, reason = UNUSABLE[exc.reason]
        return _page(request, viewer, "invitation.html", status=code, state="unusable", reason=reason)
    except ModeluxError as exc:
        return await _invitation_page(
            request, viewer, token, status=exc.status, problem=web.problem(exc), full_name=name
        )
    if isinstance(accepted, Rejected):
        # rendered once the failure is committed: it counts against the login limits
        return await _refused(request, viewer, token, accepted)
    return _logged_in(request, session_token, "/settings/billing?notice=joined")


async def _refused(request: Request, viewer: Viewer | None, token: str, refused: Rejected) -> HTMLResponse:
    """The invitation page again, saying why the address's password did not log in."""
    if refused.reason == "rate_limited":
        problem = {"message": "Too many failed attempts. Wait 15 minutes, then try again."}
        response = await _invitation_page(request, viewer, token, status=429, problem=problem)
        response.headers["Retry-After"] = str(refused.retry_after)
        return response
    problem = {"message": "Wrong password for this address.", "code": "invalid_login"}
    return await _invitation_page(request, viewer, token, status=401, problem=problem)


# ------------------------------------------------------------------ email confirmation


async def _verified(request: Request, viewer: Viewer) -> bool:
    rt = services_of(request)
    async with rt.db.session() as session:
        return await verification.user_is_verified(session, viewer.user_id)


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
    rt = services_of(request)
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
    rt = services_of(request)
    viewer = await web.current_viewer(request)
    await _checked(request, viewer)
    try:
        async with rt.db.session() as session:
            sent = await verification.resend_link(session, rt, viewer.user_id, viewer.org_id)
    except RateLimited as exc:
        return _page(
            request, viewer, "verify_email.html", status=429, state="pending", problem=web.problem(exc)
        )
    return web.see_other("/verify-email?sent=1" if sent else "/verify-email")
