"""`POST /manage/v1/billing/sales-inquiry`: talk to sales from the management API."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelux_server.kit.schemas import one
from modelux_server.management.http import respond
from modelux_server.management.openapi import ONE, created
from modelux_server.sales import schemas, service

router = APIRouter(prefix="/billing", tags=["billing"])


@router.post(
    "/sales-inquiry",
    status_code=201,
    responses=created(ONE),
    description=(
        "Ask sales about a custom plan: stored, and emailed once to the server's sales address. "
        f"Any role may ask. An organization may send {service.MAX_PER_DAY} inquiries a day (then 429)."
    ),
)
async def create_sales_inquiry(body: schemas.SalesInquiryCreate, request: Request) -> JSONResponse:
    return await respond(
        request, lambda s, rt, p: service.create(s, rt, p, body), one(schemas.render), status=201
    )
