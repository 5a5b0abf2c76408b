"""The Audit log page: the organization's changes, filtered, with each change's diff,
and downloads of the same (CSV, NDJSON). Without the `audit_log` feature the page is
locked and points at the plan that has it (402, like the API)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from modelux_server.audit import access_review, service
from modelux_server.audit.actions import ACTIONS
from modelux_server.auth.sessions import Viewer
from modelux_server.dashboard import web
from modelux_server.errors import FeatureNotInPlan, ModeluxError, NotFound
from modelux_server.kit.pagination import PageRequest
from modelux_server.services import services_of

router = APIRouter(include_in_schema=False)
PATH = "/audit-log"
FILTERS = ("since", "until", "actor", "action", "target_type", "target_id")
FORMATS = {
    "csv": ("text/csv; charset=utf-8", service.csv_lines),
    "ndjson": ("application/x-ndjson", service.ndjson),
}


def _asked(request: Request) -> dict[str, str]:
    return {k: v for k in FILTERS if (v := request.query_params.get(k, "").strip())}


@router.get(PATH, name="dashboard_audit_log")
async def audit_log_page(request: Request, viewer: Viewer = Depends(web.current_viewer)) -> Response:
    rt = services_of(request)
    asked = _asked(request)
    context: dict[str, Any] = {
        "asked": asked,
        "actions": sorted(ACTIONS),
        "events": [],
        "next_cursor": None,
        "query": urlencode(asked),
    }
    try:
        filters = service.Filters.of(asked)
        page = PageRequest.of(request.query_params.get("cursor"), 50)
        async with rt.db.session() as session:
            found = await service.list_events(session, rt, viewer.principal, page, filters)
        context["events"] = [service.render(e) for e in found.items]
        context["next_cursor"] = found.next_cursor
    except FeatureNotInPlan as exc:
        return web.page(request, "audit_log.html", viewer, status=402, locked=web.problem(exc), **context)
    except ModeluxError as exc:
        return web.page(
            request, "audit_log.html", viewer, status=exc.status, problem=web.problem(exc), **context
        )
    return web.page(request, "audit_log.html", viewer, locked=None, **context)


@router.get(f"{PATH}/export.{{kind}}", name="dashboard_audit_log_export")
async def audit_log_export(
    kind: str, request: Request, viewer: Viewer = Depends(web.current_viewer)
) -> Response:
    if kind not in FORMATS:
        raise NotFound("No such export format.", code="not_found")
    rt = services_of(request)
    try:
        filters = service.Filters.of(_asked(request))
        async with rt.db.session() as session:
            start = await service.export_start(session, rt, viewer.principal, kind, filters)
    except FeatureNotInPlan as exc:
        return _page(request, viewer, status=402, locked=web.problem(exc))
    except ModeluxError as exc:
        return _page(request, viewer, status=exc.status, problem=web.problem(exc))
    media, body = FORMATS[kind]
    rows = service.export_rows(rt, viewer.principal.org_id, start, filters)
    return StreamingResponse(
        body(rows),
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="audit-log.{kind}"',
            "Cache-Control": "no-store",
        },
    )


@router.get(f"{PATH}/access-review.csv", name="dashboard_access_review")
async def access_review_download(request: Request, viewer: Viewer = Depends(web.current_viewer)) -> Response:
    """Who can do what, right now (Enterprise: `access_review_export`); recorded as an event."""
    rt = services_of(request)
    try:
        async with rt.db.session() as session:
            review = await access_review.generate(session, rt, viewer.principal, "csv")
    except ModeluxError as exc:
        return _page(request, viewer, status=exc.status, problem=web.problem(exc))
    return Response(
        access_review.csv_text(review),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="access-review.csv"',
            "Cache-Control": "no-store",
        },
    )


def _page(request: Request, viewer: Viewer, *, status: int, **shown: Any) -> Response:
    """The page with no events, showing why (a plan's lock or a problem)."""
    context: dict[str, Any] = {
        "asked": _asked(request),
        "actions": sorted(ACTIONS),
        "events": [],
        "next_cursor": None,
        "query": "",
        "locked": None,
        "problem": None,
    }
    return web.page(request, "audit_log.html", viewer, status=status, **{**context, **shown})
