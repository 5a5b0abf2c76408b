"""The billing endpoints: the public plan catalog, the summary, and the subscription actions.

Owners and admins start, change and pay for subscriptions (billing/subscriptions.py
checks the role); members read the summary.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelux_server.billing import checkout, schemas, subscriptions
from modelux_server.billing.summary import billing_summary
from modelux_server.kit.schemas import many, one
from modelux_server.management.http import Paged, respond
from modelux_server.management.openapi import MANY, ONE, PUBLIC
from modelux_server.services import services_of

router = APIRouter(tags=["billing"])


@router.get("/plans", responses=MANY, openapi_extra=PUBLIC)
async def list_plans(request: Request) -> JSONResponse:
    # public: the catalog needs no credential
    return JSONResponse(schemas.render_plans(services_of(request).catalog))


@router.get("/billing", responses=ONE)
async def get_billing(request: Request) -> JSONResponse:
    return await respond(
        request, lambda s, rt, p: billing_summary(s, rt, p.org_id), one(schemas.render_summary)
    )


@router.post("/billing/checkout", responses=ONE)
async def create_checkout(body: schemas.CheckoutCreate, request: Request) -> JSONResponse:
    return await respond(
        request,
        lambda s, rt, p: checkout.start_checkout(s, rt, p, plan=body.plan, interval=body.interval),
        one(schemas.render_checkout),
    )


@router.post("/billing/portal", responses=ONE)
async def create_portal(request: Request, body: schemas.PortalCreate | None = None) -> JSONResponse:
    return_url = body.return_url if body else None
    return await respond(
        request,
        lambda s, rt, p: checkout.open_portal(s, rt, p, return_url=return_url),
        one(schemas.render_portal),
    )


@router.post("/billing/change-plan", responses=ONE)
async def change_plan(body: schemas.ChangePlan, request: Request) -> JSONResponse:
    return await respond(
        request,
        lambda s, rt, p: subscriptions.change_plan(s, rt, p, plan=body.plan, interval=body.interval),
        one(schemas.render_summary),
    )


@router.post("/billing/change-plan/preview", responses=ONE)
async def preview_change_plan(body: schemas.ChangePlan, request: Request) -> JSONResponse:
    return await respond(
        request,
        lambda s, rt, p: subscriptions.preview_change(s, rt, p, plan=body.plan, interval=body.interval),
        one(schemas.render_preview),
    )


@router.get("/billing/invoices", responses=MANY)
async def list_invoices(request: Request, page: Paged) -> JSONResponse:
    return await respond(
        request,
        lambda s, rt, p: subscriptions.list_invoices(s, rt, p, page),
        many(schemas.render_invoice),
    )
