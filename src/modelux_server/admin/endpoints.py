"""/admin/v1: the operator API. Off (404) unless MODELUX_ADMIN_TOKEN is set.

The token is checked before anything else is read, the body included: with the API off,
every path under the prefix is 404 whatever is sent, and a bad token gets 401 without
the request being looked at further. Bodies are therefore parsed here, after that check,
rather than by FastAPI's signature binding.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.admin import service
from modelux_server.admin.auth import Operator, authenticate_operator, not_found
from modelux_server.enterprise import invoices, plans
from modelux_server.enterprise.schemas import PlanInput, render_version
from modelux_server.errors import BadRequest
from modelux_server.kit.pagination import PageRequest
from modelux_server.kit.schemas import invalid_input, page_body
from modelux_server.services import Services, services_of

router = APIRouter(prefix="/admin/v1", tags=["admin"], include_in_schema=False)
M = TypeVar("M", bound=BaseModel)
Operation = Callable[[AsyncSession, Services, Operator], Awaitable[Any]]


class PlanMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: str = Field(min_length=1, max_length=40)
    interval: str = "monthly"


class Suspension(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=500)


async def _body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise BadRequest("The body is not JSON.", code="invalid_json") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc.errors()) from None


async def _run(request: Request, operation: Operation, *, status: int = 200) -> JSONResponse:
    rt = services_of(request)
    operator = authenticate_operator(rt.settings, request.headers.get("authorization"))
    async with rt.db.session() as session:
        body = await operation(session, rt, operator)
    return JSONResponse(body, status_code=status)


def _page(request: Request) -> PageRequest:
    return PageRequest.of(request.query_params.get("cursor"), request.query_params.get("limit"))


@router.get("/organizations")
async def list_organizations(request: Request) -> JSONResponse:
    """Organizations, searched by id, name or owner email (`search`), by `plan`, by `status`."""
    q = request.query_params

    async def run(s: AsyncSession, rt: Services, op: Operator) -> Any:
        page = await service.list_orgs(
            s, rt, _page(request), search=q.get("search"), plan=q.get("plan"), status=q.get("status")
        )
        return page_body(page, service.render_row)

    return await _run(request, run)


@router.get("/organizations/{ref}")
async def get_organization(ref: str, request: Request) -> JSONResponse:
    """One organization (by id, name or owner email) with its plan, usage, subscription,
    invoices, plan changes, Enterprise plan and the operator actions on it."""

    async def run(s: AsyncSession, rt: Services, op: Operator) -> Any:
        return {"data": await service.detail(s, rt, await service.resolve(s, ref))}

    return await _run(request, run)


@router.post("/organizations/{ref}/enterprise-plan")
async def create_enterprise_plan(ref: str, request: Request) -> JSONResponse:
    async def run(s: AsyncSession, rt: Services, op: Operator) -> Any:
        given = await _body(request, PlanInput)
        org_id = await service.resolve(s, ref)
        plan = await service.create_enterprise_plan(s, rt, op, org_id, given)
        return {"data": render_version(plan)}

    return await _run(request, run, status=201)


@router.patch("/organizations/{ref}/enterprise-plan")
async def edit_enterprise_plan(ref: str, request: Request) -> JSONResponse:
    """A new version of the plan with the given fields changed; it applies at once."""

    async def run(s: AsyncSession, rt: Services, op: Operator) -> Any:
        given = await _body(request, PlanInput)
        org_id = await service.resolve(s, ref)
        plan, changes = await service.edit_enterprise_plan(s, rt, op, org_id, given)
        return {"data": {**render_version(plan), "changes": changes}}

    return await _run(request, run)


@router.get("/organizations/{ref}/enterprise-plan/versions")
async def enterprise_plan_versions(ref: str, request: Request) -> JSONResponse:
    """Every version, newest first, each with what changed from the one before."""

    async def run(s: AsyncSession, rt: Services, op: Operator) -> Any:
        org_id = await service.resolve(s, ref)
        versions = await plans.history(s, org_id)
        return {
            "data": [{**render_version(p), "changes": changes} for p, changes in versions],
            "has_more": False,
            "next_cursor": None,
        }

    return await _run(request, run)


@router.post("/organizations/{ref}/plan")
async def move_plan(ref: str, request: Request) -> JSONResponse:
    """Move the organization to a self-serve catalog plan (ends an Enterprise plan)."""

    async def run(s: AsyncSession, rt: Services, op: Operator) -> Any:
        given = await _body(request, PlanMove)
        org_id = await service.resolve(s, ref)
        change = await service.move_plan(s, rt, op, org_id, given.plan, given.interval)
        return {"data": {"changed": change is not None, **await service.detail(s, rt, org_id)}}

    return await _run(request, run)


@router.post("/organizations/{ref}/suspend")
async def suspend(ref: str, request: Request) -> JSONResponse:
    async def run(s: AsyncSession, rt: Services, op: Operator) -> Any:
        given = await _body(request, Suspension)
        org_id = await service.resolve(s, ref)
        await service.suspend(s, rt, op, org_id, given.reason)
        return {"data": await service.detail(s, rt, org_id)}

    return await _run(request, run)


@router.post("/organizations/{ref}/unsuspend")
async def unsuspend(ref: str, request: Request) -> JSONResponse:
    async def run(s: AsyncSession, rt: Services, op: Operator) -> Any:
        org_id = await service.resolve(s, ref)
        await service.unsuspend(s, rt, op, org_id)
        return {"data": await service.detail(s, rt, org_id)}

    return await _run(request, run)


@router.get("/organizations/{ref}/invoices")
async def list_invoices(ref: str, request: Request) -> JSONResponse:
    async def run(s: AsyncSession, rt: Services, op: Operator) -> Any:
        org_id = await service.resolve(s, ref)
        now = rt.clock.now()
        rows = await invoices.for_org(s, org_id)
        return {
            "data": [invoices.render(i, now) for i in rows],
            "has_more": False,
            "next_cursor": None,
        }

    return await _run(request, run)


@router.post("/organizations/{ref}/invoices")
async def record_invoice(ref: str, request: Request) -> JSONResponse:
    """Manual billing mode: record an invoice sent outside any payment processor."""

    async def run(s: AsyncSession, rt: Services, op: Operator) -> Any:
        given = await _body(request, invoices.InvoiceRecord)
        org_id = await service.resolve(s, ref)
        invoice = await invoices.record_manual(s, rt, op, org_id, given)
        return {"data": invoices.render(invoice, rt.clock.now())}

    return await _run(request, run, status=201)


@router.patch("/organizations/{ref}/invoices/{invoice_id}")
async def update_invoice(ref: str, invoice_id: str, request: Request) -> JSONResponse:
    async def run(s: AsyncSession, rt: Services, op: Operator) -> Any:
        given = await _body(request, invoices.InvoiceUpdate)
        org_id = await service.resolve(s, ref)
        invoice = await invoices.update_manual(s, rt, op, org_id, invoice_id, given)
        return {"data": invoices.render(invoice, rt.clock.now())}

    return await _run(request, run)


@router.get("/sales-inquiries")
async def list_sales_inquiries(request: Request) -> JSONResponse:
    """Talk-to-sales requests, newest first."""
    from modelux_server.sales import schemas as sales_schemas
    from modelux_server.sales import service as sales_service

    async def run(s: AsyncSession, rt: Services, op: Operator) -> Any:
        page = await sales_service.list_inquiries(s, _page(request))
        return page_body(page, sales_schemas.render)

    return await _run(request, run)


@router.api_route("/{rest:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
async def unknown(rest: str, request: Request) -> JSONResponse:
    """Anything else under the prefix: 404 once the operator is known (401 before, and
    404 with the API off, like every path here)."""
    authenticate_operator(services_of(request).settings, request.headers.get("authorization"))
    raise not_found()
