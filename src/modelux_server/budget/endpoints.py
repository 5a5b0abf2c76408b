from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelux_server.budget import schemas, service
from modelux_server.kit.schemas import many, one
from modelux_server.management.http import Paged, respond
from modelux_server.management.openapi import MANY, ONE, created

router = APIRouter(prefix="/budgets", tags=["budgets"])


@router.get("", responses=MANY)
async def list_budgets(request: Request, page: Paged) -> JSONResponse:
    """The organization's budgets, each with its spend in the current period."""
    return await respond(request, lambda s, rt, p: service.list_budgets(s, rt, p, page), many(schemas.render))


@router.post("", status_code=201, responses=created(ONE))
async def create_budget(body: schemas.BudgetCreate, request: Request) -> JSONResponse:
    """A USD spend cap per period on the organization, a project or an API key."""
    return await respond(
        request,
        lambda s, rt, p: service.create(
            s,
            rt,
            p,
            name=body.name,
            scope=body.scope,
            scope_id=body.scope_id,
            amount_usd=body.amount_usd,
            period=body.period,
            action=body.action,
            thresholds=body.thresholds,
        ),
        one(schemas.render),
        status=201,
    )


@router.get("/{budget_id}", responses=ONE)
async def get_budget(budget_id: str, request: Request) -> JSONResponse:
    return await respond(request, lambda s, rt, p: service.get(s, rt, p, budget_id), one(schemas.render))


@router.patch("/{budget_id}", responses=ONE)
async def update_budget(budget_id: str, body: schemas.BudgetUpdate, request: Request) -> JSONResponse:
    changes = body.model_dump(exclude_unset=True)
    return await respond(
        request, lambda s, rt, p: service.update(s, rt, p, budget_id, changes), one(schemas.render)
    )


@router.delete("/{budget_id}", responses=ONE)
async def delete_budget(budget_id: str, request: Request) -> JSONResponse:
    return await respond(
        request, lambda s, rt, p: service.delete(s, rt, p, budget_id), one(schemas.render_deleted)
    )
