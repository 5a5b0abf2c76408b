"""One way for every management endpoint to run: authenticate, authorise,
replay or record `Idempotency-Key`, run the service in one transaction.

Endpoints stay three lines long and no try/except is pasted into each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.auth.management import authenticate_management_key
from modelux_server.auth.principal import Principal
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.management import idempotency
from modelux_server.runtime import Runtime

Handler = Callable[[AsyncSession, Principal], Awaitable[dict[str, Any]]]
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def run(request: Request, handler: Handler, *, role: str = "member", status: int = 200) -> JSONResponse:
    rt = runtime(request)
    key = request.headers.get("idempotency-key") if request.method in UNSAFE else None
    fingerprint = await _fingerprint(request) if key else ""
    try:
        async with rt.db.session() as session:
            principal = await authenticate_management_key(session, request.headers.get("authorization"))
            principal.require(role)
            if key:
                idempotency.check_key(key)
                replay = await _replay(session, principal, key, fingerprint, rt.clock.now())
                if replay is not None:
                    return replay
            body = await handler(session, principal)
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


def page_request(request: Request) -> PageRequest:
    from modelux_server.errors import ValidationFailed

    raw = request.query_params.get("limit")
    try:
        limit = int(raw) if raw is not None else 50
    except ValueError:
        raise ValidationFailed("limit must be a whole number", code="invalid_limit", param="limit") from None
    return PageRequest(cursor=request.query_params.get("cursor") or None, limit=limit)


def page_body(page: Page[Any], render: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    return {
        "data": [render(item) for item in page.items],
        "next_cursor": page.next_cursor,
        "has_more": page.has_more,
    }
