"""What each tool does: the management endpoint it mirrors and the service behind it.

One table serves both backends: `local.py` runs `run` inside a transaction
after authenticating (unless the operation is `public`), `remote.py` sends
`method path` to a server's management API. Keeping the endpoint and the
service call in one row is what makes a tool answer exactly what its endpoint
answers: `run` checks its arguments with the endpoint's body schema, calls
the same service (which checks the role) and renders with the same schema
module and envelopes (kit/schemas.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from modelux_server.api_key import schemas as api_key_schemas
from modelux_server.api_key import service as api_keys
from modelux_server.audit import access_review
from modelux_server.audit import service as audit_log
from modelux_server.auth.principal import Principal
from modelux_server.billing import checkout, subscriptions
from modelux_server.billing import schemas as billing_schemas
from modelux_server.billing.summary import billing_summary
from modelux_server.budget import schemas as budget_schemas
from modelux_server.budget import service as budgets
from modelux_server.kit.db import Session
from modelux_server.kit.pagination import PageRequest
from modelux_server.kit.schemas import page_body, parse
from modelux_server.project import schemas as project_schemas
from modelux_server.project import service as projects
from modelux_server.provider import schemas as provider_schemas
from modelux_server.provider import service as providers
from modelux_server.sales import schemas as sales_schemas
from modelux_server.sales import service as sales
from modelux_server.services import Services

Args = dict[str, Any]
# (session, services, principal or None for public calls, arguments) -> the REST body
Run = Callable[[Session, Services, Any, Args], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    path: str  # under /manage/v1
    run: Run
    # answered without a management key, like GET /plans; the others
    # authenticate, and their service checks the role
    public: bool = False

    def target(self, args: Args) -> tuple[str, Args]:
        """The path with its `{name}` parameters filled from `args`, and the arguments left."""
        path, rest = self.path, dict(args)
        for name in [part.split("}", 1)[0] for part in self.path.split("{")[1:]]:
            path = path.replace("{" + name + "}", quote(str(rest.pop(name, "")), safe=""))
        return path, rest


def _page(args: Args) -> PageRequest:
    return PageRequest.of(args.get("cursor"), args.get("limit"))


async def _get_billing(session: Session, rt: Services, p: Principal, args: Args) -> dict[str, Any]:
    return {"data": billing_schemas.render_summary(await billing_summary(session, rt, p.org_id))}


async def _list_plans(session: Session, rt: Services, p: Principal | None, args: Args) -> dict[str, Any]:
    return billing_schemas.render_plans(rt.catalog)


async def _checkout(session: Session, rt: Services, p: Principal, args: Args) -> dict[str, Any]:
    body = parse(billing_schemas.CheckoutCreate, args)
    started = await checkout.start_checkout(session, rt, p, plan=body.plan, interval=body.interval)
    return {"data": billing_schemas.render_checkout(started)}


async def _change_plan(session: Session, rt: Services, p: Principal, args: Args) -> dict[str, Any]:
    body = parse(billing_schemas.ChangePlan, args)
    summary = await subscriptions.change_plan(session, rt, p, plan=body.plan, interval=body.interval)
    return {"data": billing_schemas.render_summary(summary)}


async def _preview_change_plan(session: Session, rt: Services, p: Principal, args: Args) -> dict[str, Any]:
    body = parse(billing_schemas.ChangePlan, args)
    preview = await subscriptions.preview_change(session, rt, p, plan=body.plan, interval=body.interval)
    return {"data": billing_schemas.render_preview(preview)}


async def _list_invoices(session: Session, rt: Services, p: Principal, args: Args) -> dict[str, Any]:
    page = await subscriptions.list_invoices(session, rt, p, _page(args))
    return page_body(page, billing_schemas.render_invoice)


async def _portal(session: Session, rt: Services, p: Principal, args: Args) -> dict[str, Any]:
    body = parse(billing_schemas.PortalCreate, args)
    opened = await checkout.open_portal(session, rt, p, return_url=body.return_url)
    return {"data": billing_schemas.render_portal(opened)}


async def _list_projects(session: Session, rt: Services, p: Principal, args: Args) -> dict[str, Any]:
    return page_body(await projects.list_projects(session, p, _page(args)), project_schemas.render)


async def _create_project(session: Session, rt: Services, p: Principal, args: Args) -> dict[str, Any]:
    body = parse(project_schemas.ProjectCreate, args)
    project = await projects.create(session, rt, p, name=body.name, description=body.description)
    return {"data": project_schemas.render(project)}


async def _list_providers(session: Session, rt: Services, p: Principal, args: Args) -> dict[str, Any]:
    return page_body(await providers.list_credentials(session, p, _page(args)), provider_schemas.render)


async def _add_provider(session: Session, rt: Services, p: Principal, args: Args) -> dict[str, Any]:
    body = parse(provider_schemas.ProviderCreate, args)
    credential = await providers.create(
        session,
        rt,
        p,
        vendor=body.vendor,
        name=body.name,
        api_key=body.api_key,
        base_url=body.base_url,
        default=body.default,
    )
    return {"data": provider_schemas.render(credential)}


async def _list_api_keys(session: Session, rt: Services, p: Principal, args: Args) -> dict[str, Any]:
    page = await api_keys.list_keys(session, p, _page(args), args.get("project_id"))
    return page_body(page, api_key_schemas.render)


async def _create_api_key(session: Session, rt: Services, p: Principal, args: Args) -> dict[str, Any]:
    body = parse(api_key_schemas.ApiKeyCreate, args)
    created = await api_keys.create(
        session, rt, p, project_id=body.project_id, name=body.name, expires_at=body.expires_at
    )
    return {"data": api_key_schemas.render_created(created)}


async def _list_budgets(session: Session, rt: Services, p: Principal, args: Args) -> dict[str, Any]:
    return page_body(await budgets.list_budgets(session, rt, p, _page(args)), budget_schemas.render)


async def _create_budget(session: Session, rt: Services, p: Principal, args: Args) -> dict[str, Any]:
    body = parse(budget_schemas.BudgetCreate, args)
    view = await budgets.create(
        session,
        rt,
        p,
        name=body.name,
        scope=body.scope,
        scope_id=body.scope_id,
        amount_usd=body.amount_usd,
        period=body.period,
        action=body.action,
        thresholds=body.thresholds,
    )
    return {"data": budget_schemas.render(view)}


async def _update_budget(session: Session, rt: Services, p: Principal, args: Args) -> dict[str, Any]:
    _, fields = OPERATIONS["update_budget"].target(args)
    changes = parse(budget_schemas.BudgetUpdate, fields).model_dump(exclude_unset=True)
    view = await budgets.update(session, rt, p, str(args.get("budget_id", "")), changes)
    return {"data": budget_schemas.render(view)}


async def _delete_budget(session: Session, rt: Services, p: Principal, args: Args) -> dict[str, Any]:
    view = await budgets.delete(session, rt, p, str(args.get("budget_id", "")))
    return {"data": budget_schemas.render_deleted(view)}


async def _contact_sales(session: Session, rt: Services, p: Principal, args: Args) -> dict[str, Any]:
    inquiry = await sales.create(session, rt, p, parse(sales_schemas.SalesInquiryCreate, args))
    return {"data": sales_schemas.render(inquiry)}


async def _list_audit_events(session: Session, rt: Services, p: Principal, args: Args) -> dict[str, Any]:
    filters = audit_log.Filters.of(args)
    return page_body(await audit_log.list_events(session, rt, p, _page(args), filters), audit_log.render)


async def _export_access_review(session: Session, rt: Services, p: Principal, args: Args) -> dict[str, Any]:
    return {"data": access_review.render(await access_review.generate(session, rt, p, "json"))}


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("get_billing", "GET", "/billing", _get_billing),
        Operation("list_plans", "GET", "/plans", _list_plans, public=True),
        Operation("create_checkout_session", "POST", "/billing/checkout", _checkout),
        Operation("preview_change_plan", "POST", "/billing/change-plan/preview", _preview_change_plan),
        Operation("change_plan", "POST", "/billing/change-plan", _change_plan),
        Operation("list_invoices", "GET", "/billing/invoices", _list_invoices),
        Operation("create_portal_session", "POST", "/billing/portal", _portal),
        Operation("list_projects", "GET", "/projects", _list_projects),
        Operation("create_project", "POST", "/projects", _create_project),
        Operation("list_providers", "GET", "/providers", _list_providers),
        Operation("add_provider", "POST", "/providers", _add_provider),
        Operation("list_api_keys", "GET", "/api-keys", _list_api_keys),
        Operation("create_api_key", "POST", "/api-keys", _create_api_key),
        Operation("list_budgets", "GET", "/budgets", _list_budgets),
        Operation("create_budget", "POST", "/budgets", _create_budget),
        Operation("update_budget", "PATCH", "/budgets/{budget_id}", _update_budget),
        Operation("delete_budget", "DELETE", "/budgets/{budget_id}", _delete_budget),
        Operation("contact_sales", "POST", "/billing/sales-inquiry", _contact_sales),
        Operation("list_audit_events", "GET", "/audit-log", _list_audit_events),
        Operation("export_access_review", "GET", "/access-review", _export_access_review),
    )
}
