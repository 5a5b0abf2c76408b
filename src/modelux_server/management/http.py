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
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.auth.management import authenticate_management_key
from modelux_server.auth.principal import Principal
from modelux_server.kit.pagination import PageRequest
from modelux_server.management import idempotency
from modelux_server.services import Services, services_of

T = TypeVar("T")
# one use case, run for the authenticated principal: (session, services, principal) -> result
Operation = Callable[[AsyncSession, Services, Principal], Awaitable[T]]
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def page_request(request: Request) -> PageRequest:
    return PageRequest.of(request.query_params.get("cursor"), request.query_params.get("limit"))


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
    try:
        async with rt.db.session() as session:
            principal = await authenticate_management_key(session, request.headers.get("authorization"))
            if key:
                idempotency.check_key(key)
                replay = await _replay(session, principal, key, fingerprint, rt.clock.now())
                if replay is not None:
                    return replay
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
        return replay
    return JSONResponse(body, status_code=status)


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
