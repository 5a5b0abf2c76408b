"""What each tool does: the management endpoint it mirrors and the service behind it.

One table serves both backends: `local.py` runs `run` inside a transaction
after authenticating and checking `role`, `remote.py` sends `method path` to
a server's management API. Keeping the endpoint and the service call in one
row is what makes a tool answer exactly what its endpoint answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.auth.principal import Principal
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.runtime import Runtime

# (session, runtime, principal or None for public calls, arguments) -> the REST body
Run = Callable[[AsyncSession, Runtime, Any, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    path: str  # under /manage/v1
    # The role the matching endpoint demands (None: public, like GET /plans).
    # It repeats the endpoint's `run(..., role=...)`, which lives in the
    # endpoint, not a service; tests/mcp compare member refusals with the API's.
    role: str | None
    run: Run


def _page(args: dict[str, Any]) -> PageRequest:
    return PageRequest(cursor=args.get("cursor") or None, limit=args.get("limit") or 50)


def _list_body(page: Page[Any], render: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    return {
        "data": [render(x) for x in page.items],
        "next_cursor": page.next_cursor,
        "has_more": page.has_more,
    }


async def _get_billing(
    session: AsyncSession, rt: Runtime, p: Principal, args: dict[str, Any]
) -> dict[str, Any]:
    from modelux_server.billing.service import billing_summary

    return {"data": await billing_summary(session, rt, p.org_id)}


async def _list_plans(session: AsyncSession, rt: Runtime, p: Any, args: dict[str, Any]) -> dict[str, Any]:
    from modelux_server.billing.schemas import render_plan

    return {
        "data": [render_plan(plan) for plan in rt.catalog.ordered()],
        "next_cursor": None,
        "has_more": False,
    }


async def _checkout(session: AsyncSession, rt: Runtime, p: Principal, args: dict[str, Any]) -> dict[str, Any]:
    from modelux_server.billing import subscriptions

    found = await subscriptions.start_checkout(
        session, rt, p, plan=args["plan"], interval=args.get("interval", "monthly")
    )
    return {"data": found}


async def _change_plan(
    session: AsyncSession, rt: Runtime, p: Principal, args: dict[str, Any]
) -> dict[str, Any]:
    from modelux_server.billing import subscriptions

    summary = await subscriptions.change_plan(
        session, rt, p, plan=args["plan"], interval=args.get("interval", "monthly")
    )
    return {"data": summary}


async def _portal(session: AsyncSession, rt: Runtime, p: Principal, args: dict[str, Any]) -> dict[str, Any]:
    from modelux_server.billing import subscriptions

    return {"data": await subscriptions.open_portal(session, rt, p, return_url=args.get("return_url"))}


async def _list_projects(
    session: AsyncSession, rt: Runtime, p: Principal, args: dict[str, Any]
) -> dict[str, Any]:
    from modelux_server.project import schemas, service

    return _list_body(await service.list_projects(session, p.org_id, _page(args)), schemas.render)


async def _create_project(
    session: AsyncSession, rt: Runtime, p: Principal, args: dict[str, Any]
) -> dict[str, Any]:
    from modelux_server.project import schemas, service

    project = await service.create(
        session, rt, p.org_id, name=args["name"], description=args.get("description")
    )
    return {"data": schemas.render(project)}


async def _list_providers(
    session: AsyncSession, rt: Runtime, p: Principal, args: dict[str, Any]
) -> dict[str, Any]:
    from modelux_server.provider import schemas, service

    return _list_body(await service.list_credentials(session, p.org_id, _page(args)), schemas.render)


async def _add_provider(
    session: AsyncSession, rt: Runtime, p: Principal, args: dict[str, Any]
) -> dict[str, Any]:
    from modelux_server.provider import schemas, service

    credential = await service.create(
        session,
        rt,
        p.org_id,
        vendor=args["vendor"],
        name=args["name"],
        api_key=args["api_key"],
        base_url=args.get("base_url"),
    )
    return {"data": schemas.render(credential)}


async def _list_api_keys(
    session: AsyncSession, rt: Runtime, p: Principal, args: dict[str, Any]
) -> dict[str, Any]:
    from modelux_server.api_key import schemas, service

    page = await service.list_keys(session, p.org_id, _page(args), args.get("project_id"))
    return _list_body(page, schemas.render)


async def _create_api_key(
    session: AsyncSession, rt: Runtime, p: Principal, args: dict[str, Any]
) -> dict[str, Any]:
    from modelux_server.api_key import schemas, service

    key, token = await service.create(
        session, rt, p.org_id, project_id=args["project_id"], name=args.get("name", "default")
    )
    return {"data": schemas.render(key, token)}


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("get_billing", "GET", "/billing", "member", _get_billing),
        Operation("list_plans", "GET", "/plans", None, _list_plans),
        Operation("create_checkout_session", "POST", "/billing/checkout", "admin", _checkout),
        Operation("change_plan", "POST", "/billing/change-plan", "admin", _change_plan),
        Operation("create_portal_session", "POST", "/billing/portal", "admin", _portal),
        Operation("list_projects", "GET", "/projects", "member", _list_projects),
        Operation("create_project", "POST", "/projects", "admin", _create_project),
        Operation("list_providers", "GET", "/providers", "member", _list_providers),
        Operation("add_provider", "POST", "/providers", "admin", _add_provider),
        Operation("list_api_keys", "GET", "/api-keys", "member", _list_api_keys),
        Operation("create_api_key", "POST", "/api-keys", "admin", _create_api_key),
    )
}
