"""One way for every management endpoint to run: authenticate, replay or
record `Idempotency-Key`, run one service operation in one transaction, render.

An endpoint parses its input and hands `respond` the operation and how to
render its result:

    return await respond(request, lambda s, rt, p: service.get(s, p, project_id), one(schemas.render))

The operation checks the principal's role itself (services own the rules), so
the endpoint states none, and no try/except is pasted into each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import WithJsonSchema
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.auth.management import authenticate_management_key
from modelux_server.auth.principal import Principal
from modelux_server.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageRequest
from modelux_server.management import idempotency
from modelux_server.management.rate_limit import throttle_management_key
from modelux_server.ratelimit.headers import rate_headers
from modelux_server.ratelimit.limiter import Verdict
from modelux_server.services import Services, services_of

T = TypeVar("T")
# one use case, run for the authenticated principal: (session, services, principal) -> result
Operation = Callable[[AsyncSession, Services, Principal], Awaitable[T]]
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def page_request(
    cursor: Annotated[
        str | None,
        Query(description="The `next_cursor` of the previous page; absent for the first page."),
        WithJsonSchema({"type": "string"}),
    ] = None,
    limit: Annotated[
        str | None,
        Query(description=f"Objects per page (default {DEFAULT_LIMIT})."),
        WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
    ] = None,
) -> PageRequest:
    """The page a list call asks for (a FastAPI dependency).

    The values reach `PageRequest.of` as sent, so a bad one is refused exactly
    as an MCP tool refuses it; the declared schema is what documents them.
    """
    return PageRequest.of(cursor, limit)


Paged = Annotated[PageRequest, Depends(page_request)]
# `?project_id=`: a list narrowed to one project's objects
ProjectFilter = Annotated[
    str | None,
    Query(description="Only this project's objects."),
    WithJsonSchema({"type": "string"}),
]


async def respond(
    request: Request,
    operation: Operation[T],
    render: Callable[[T], dict[str, Any]],
    *,
    status: int = 200,
) -> JSONResponse:
    """Run `operation` for the caller and answer `render(result)` with `status`.

    The rendering happens inside the transaction: the body is what an
    `Idempotency-Key` replay will answer, recorded in the same commit.
    """
    rt = services_of(request)
    key = request.headers.get("idempotency-key") if request.method in UNSAFE else None
    fingerprint = await _fingerprint(request) if key else ""
    verdict: Verdict | None = None
    try:
        async with rt.db.session() as session:
            principal = await authenticate_management_key(session, request.headers.get("authorization"))
            # before anything else runs, so a 429 has changed nothing
            verdict = await throttle_management_key(session, rt, principal)
            if key:
                idempotency.check_key(key)
                replay = await _replay(session, principal, key, fingerprint, rt.clock.now())
                if replay is not None:
                    return _with_rate(replay, verdict)
            body = render(await operation(session, rt, principal))
            if key:
                await idempotency.remember(
                    session,
                    org_id=principal.org_id,
                    credential_id=principal.actor,
                    key=key,
                    method=request.method,
                    path=request.url.path,
                    fingerprint=fingerprint,
                    status=status,
                    body=body,
                    now=rt.clock.now(),
                )
    except IntegrityError:
        if not key:
            raise
        # a concurrent request with the same key committed first: answer as it did
        async with rt.db.session() as session:
            principal = await authenticate_management_key(session, request.headers.get("authorization"))
            replay = await _replay(session, principal, key, fingerprint, rt.clock.now())
        if replay is None:
            raise
        return _with_rate(replay, verdict)
    return _with_rate(JSONResponse(body, status_code=status), verdict)


def _with_rate(response: JSONResponse, verdict: Verdict | None) -> JSONResponse:
    if verdict is not None:
        response.headers.update(rate_headers(verdict))
    return response


async def _fingerprint(request: Request) -> str:
    digest = hashlib.sha256(f"{request.method} {request.url.path}\n".encode())
    digest.update(await request.body())
    return digest.hexdigest()


async def _replay(
    session: AsyncSession, principal: Principal, key: str, fingerprint: str, now: datetime
) -> JSONResponse | None:
    record = await idempotency.find(session, principal.actor, key, fingerprint, now)
    if record is None:
        return None
    return JSONResponse(
        record.response_body,
        status_code=record.status_code,
        headers={"Idempotent-Replayed": "true"},
    )
