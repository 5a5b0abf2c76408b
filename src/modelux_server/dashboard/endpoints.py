"""The dashboard's routes, its static files and its two HTML-only error answers.

Mounted from assembly.py and app.py: `router` at the root, `mount(app)` for /static and
the handlers that turn a missing session into a redirect and a failed CSRF
check into a 403 page (the JSON error handlers serve the APIs).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from modelux_server.dashboard import (
    account_pages,
    audit_pages,
    auth_pages,
    billing_pages,
    budget_pages,
    resource_pages,
    security,
    web,
)

router = APIRouter(include_in_schema=False)
router.include_router(auth_pages.router)
router.include_router(account_pages.router)
router.include_router(billing_pages.router)
router.include_router(resource_pages.router)
router.include_router(budget_pages.router)
router.include_router(audit_pages.router)


@router.get("/")
async def root(request: Request) -> Response:
    viewer = await web.optional_viewer(request)
    return web.see_other("/settings/billing" if viewer else "/login")


def mount(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(packages=[("modelux_server.dashboard", "static")]), name="static")

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, security.LoginRequired)
        if request.method != "GET":
            return web.see_other("/login")
        return web.login_redirect(exc.next_path)

    async def csrf_failed(request: Request, exc: Exception) -> Response:
        viewer = await web.optional_viewer(request)
        problem = {
            "message": "This form expired or did not come from this site. Go back, reload and try again.",
            "code": "csrf_failed",
        }
        return web.page(request, "error.html", viewer, status=403, problem=problem)

    app.add_exception_handler(security.LoginRequired, login_required)
    app.add_exception_handler(security.CsrfFailed, csrf_failed)
