"""One way for every management endpoint to run: authenticate, authorise,
replay or record `Idempotency-Key`, run the service in one transaction.

Endpoints stay three lines long and no try/except is pasted into each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.auth.management import authenticate_management_key
from modelux_server.auth.principal import Principal
from modelux_server.errors import Conflict
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.models import IdempotencyKey
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
                replay = await _replay(session, principal.org_id, key, fingerprint)
                if replay is not None:
                    return replay
            body = await handler(session, principal)
            if key:
                session.add(
                    IdempotencyKey(
                        org_id=principal.org_id,
                        key=key[:255],
                        method=request.method,
                        path=request.url.path,
                        request_hash=fingerprint,
                        status_code=status,
                        response_body=body,
                        created_at=rt.clock.now(),
                    )
                )
    except IntegrityError:
        if not key:
            raise
        # a concurrent request with the same key committed first: answer as it did
        async with rt.db.session() as session:
            principal = await authenticate_management_key(session, request.headers.get("authorization"))
            replay = await _replay(session, principal.org_id, key, fingerprint)
        if replay is None:
            raise
        return replay
    return JSONResponse(body, status_code=status)


async def _fingerprint(request: Request) -> str:
    digest = hashlib.sha256(f"{request.method} {request.url.path}\n".encode())
    digest.update(await request.body())
    return digest.hexdigest()


async def _replay(session: AsyncSession, org_id: str, key: str, fingerprint: str) -> JSONResponse | None:
    stmt = select(IdempotencyKey).where(IdempotencyKey.org_id == org_id, IdempotencyKey.key == key[:255])
    record = (await session.execute(stmt)).scalar_one_or_none()
    if record is None:
        return None
    if record.request_hash != fingerprint:
        raise Conflict(
            "This Idempotency-Key was used with a different request.", code="idempotency_key_reused"
        )
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
