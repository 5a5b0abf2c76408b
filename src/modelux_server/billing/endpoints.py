from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelux_server.billing import schemas, service
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
