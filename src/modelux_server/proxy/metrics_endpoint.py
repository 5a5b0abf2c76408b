"""`GET /metrics` in the Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    found = request.app.state.runtime.extras.get("metrics")
    body = generate_latest(found.registry) if found is not None else b""
    return Response(body, media_type=CONTENT_TYPE_LATEST)
