"""`GET /metrics` in the Prometheus text format, behind an optional bearer token.

The figures say how much traffic the deployment carries and how it fails; that is
the operator's business, so a production deployment serves them only when told to
(see `Settings.metrics_served`) and, with `MODELUX_METRICS_TOKEN`, only to a scraper
that presents the token.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from modelux_server.errors import NotFound, Unauthorized

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    rt = request.app.state.services
    settings = rt.settings
    if not settings.metrics_served:
        raise NotFound("Not Found")
    if settings.metrics_token:
        given = request.headers.get("authorization", "")
        expected = f"Bearer {settings.metrics_token}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthorized("/metrics needs the bearer token set in MODELUX_METRICS_TOKEN.")
    body = generate_latest(rt.metrics.registry) if rt.has_metrics else b""
    return Response(body, media_type=CONTENT_TYPE_LATEST)
