from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelux_server.billing import schemas, service, subscriptions
from modelux_server.management.http import run, runtime

router = APIRouter(tags=["billing"])


@router.get("/plans")
async def list_plans(request: Request) -> JSONResponse:
    # public: the catalog needs no credential
    plans = [schemas.render_plan(p) for p in runtime(request).catalog.ordered()]
    return JSONResponse({"data": plans, "next_cursor": None, "has_more": False})


@router.get("/billing")
async def get_billing(request: Request) -> JSONResponse:
    async def handle(session, p):
        return {"data": await service.billing_summary(session, runtime(request), p.org_id)}

    return await run(request, handle)


# Owners and admins start, change and pay for subscriptions; members get 403.
@router.post("/billing/checkout")
async def create_checkout(body: schemas.CheckoutCreate, request: Request) -> JSONResponse:
    async def handle(session, p):
        data = await subscriptions.start_checkout(
            session, runtime(request), p, plan=body.plan, interval=body.interval
        )
        return {"data": data}

    return await run(request, handle, role="admin")


@router.post("/billing/portal")
async def create_portal(request: Request, body: schemas.PortalCreate | None = None) -> JSONResponse:
    async def handle(session, p):
        return_url = body.return_url if body else None
        return {"data": await subscriptions.open_portal(session, runtime(request), p, return_url=return_url)}

    return await run(request, handle, role="admin")


@router.post("/billing/change-plan")
async def change_plan(body: schemas.ChangePlan, request: Request) -> JSONResponse:
    async def handle(session, p):
        data = await subscriptions.change_plan(
            session, runtime(request), p, plan=body.plan, interval=body.interval
        )
        return {"data": data}

    return await run(request, handle, role="admin")
