"""`POST /webhooks/stripe`: Stripe's door in; authenticated by signature, not by key."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelux_server.billing.processor import InvalidWebhook, MalformedWebhook
from modelux_server.billing.stripe import webhooks
from modelux_server.errors import BadRequest
from modelux_server.services import services_of

router = APIRouter(tags=["webhooks"])


@router.post("/webhooks/stripe", include_in_schema=False)
async def stripe_webhook(request: Request) -> JSONResponse:
    # the raw bytes: the signature covers exactly what Stripe sent
    payload = await request.body()
    try:
        result = await webhooks.receive(
            services_of(request), payload, request.headers.get("stripe-signature")
        )
    except MalformedWebhook as exc:
        raise BadRequest(f"Webhook refused: {exc}", code="invalid_event") from None
    except InvalidWebhook as exc:
        raise BadRequest(f"Webhook refused: {exc}", code="invalid_signature") from None
    return JSONResponse({"received": True, "result": result})
