"""GET /manage/v1/audit-log (JSON pages, or a CSV / NDJSON export by `Accept`) and
GET /manage/v1/audit-log/verify, which need the `audit_log` feature (402 without it);
GET /manage/v1/access-review (JSON, or CSV by `Accept`), which needs `access_review_export`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import WithJsonSchema

from modelux_server.audit import access_review, service
from modelux_server.auth.management import authenticate_management_key
from modelux_server.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageRequest
from modelux_server.kit.schemas import many
from modelux_server.management.http import respond
from modelux_server.management.openapi import MANY, ONE
from modelux_server.management.rate_limit import throttle_management_key
from modelux_server.services import services_of

router = APIRouter(prefix="/audit-log", tags=["audit-log"])
access_review_router = APIRouter(prefix="/access-review", tags=["audit-log"])
EXPORTS = {"text/csv": "csv", "application/x-ndjson": "ndjson"}
Text = Annotated[str | None, Query(max_length=320)]
# ISO 8601 with a zone (`2026-12-01T00:00:00Z`); refused with 422 otherwise
When = Annotated[
    str | None,
    Query(max_length=40, description="An ISO 8601 time with its zone, e.g. 2026-12-01T00:00:00Z."),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
# the audit log pages by event number, newest first: a cursor is the `next_cursor` handed out
# (empty: the first page)
Cursor = Annotated[
    str | None,
    Query(description="The `next_cursor` of the previous page; absent for the first page."),
    WithJsonSchema({"type": "string", "pattern": "^[0-9]{0,18}$"}),
]
Limit = Annotated[
    str | None,
    Query(description=f"Objects per page (default {DEFAULT_LIMIT})."),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
]
# a plan without the feature answers 402 (documented in the OpenAPI document)
GATED = {"x-modelux-feature": "audit_log"}


def _export_kind(request: Request) -> str | None:
    accept = request.headers.get("accept", "")
    for media in (part.split(";")[0].strip().lower() for part in accept.split(",")):
        if media in EXPORTS:
            return EXPORTS[media]
    return None


@router.get("", responses=MANY, response_model=None, openapi_extra=GATED)
async def list_audit_events(
    request: Request,
    cursor: Cursor = None,
    limit: Limit = None,
    since: When = None,
    until: When = None,
    actor: Text = None,
    action: Text = None,
    target_type: Text = None,
    target_id: Text = None,
) -> JSONResponse | StreamingResponse:
    """Changes on record, newest first. `Accept: text/csv` or `application/x-ndjson`
    exports every matching event (oldest first), streamed."""
    page = PageRequest.of(cursor, limit)
    filters = service.Filters.of(
        {
            "since": since,
            "until": until,
            "actor": actor,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
        }
    )
    kind = _export_kind(request)
    if kind is None:
        return await respond(
            request, lambda s, rt, p: service.list_events(s, rt, p, page, filters), many(service.render)
        )
    rt = services_of(request)
    async with rt.db.session() as session:
        principal = await authenticate_management_key(session, request.headers.get("authorization"))
        await throttle_management_key(session, rt, principal)
        start = await service.export_start(session, rt, principal, kind, filters)
    rows = service.export_rows(rt, principal.org_id, start, filters)
    if kind == "csv":
        body, media = service.csv_lines(rows), "text/csv; charset=utf-8"
    else:
        body, media = service.ndjson(rows), "application/x-ndjson"
    return StreamingResponse(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="audit-log.{kind}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/verify", responses=ONE, openapi_extra=GATED)
async def verify_audit_log(request: Request) -> JSONResponse:
    """Recompute the organization's hash chain; `broken_at` names the first link that fails."""
    return await respond(
        request, lambda s, rt, p: service.verify(s, rt, p), lambda v: {"data": service.render_verdict(v)}
    )


@access_review_router.get(
    "", responses=ONE, response_model=None, openapi_extra={"x-modelux-feature": "access_review_export"}
)
async def export_access_review(request: Request) -> JSONResponse | Response:
    """Who can do what in the organization, right now, and since when: members and
    invitations, management keys, project API keys, SCIM tokens and the SSO state.
    `Accept: text/csv` answers the same as one table. Admins and owners; recorded in
    the audit log as `access_review.exported`."""
    if _export_kind(request) != "csv":
        return await respond(
            request,
            lambda s, rt, p: access_review.generate(s, rt, p, "json"),
            lambda review: {"data": access_review.render(review)},
        )
    rt = services_of(request)
    async with rt.db.session() as session:
        principal = await authenticate_management_key(session, request.headers.get("authorization"))
        await throttle_management_key(session, rt, principal)
        review = await access_review.generate(session, rt, principal, "csv")
    return Response(
        access_review.csv_text(review),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="access-review.csv"'},
    )
