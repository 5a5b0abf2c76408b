"""Projects, API keys, provider credentials, routing configs and management keys.

Each page is a loader (what the list shows) plus actions (create, revoke).
Every action runs one service call in one transaction; a refusal (402 plan
limit, 403 role, 409, 422) re-renders the page with the service's message.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from modelux_server.api_key import service as api_keys
from modelux_server.auth.principal import ROLE_RANK, Principal
from modelux_server.auth.sessions import Viewer
from modelux_server.billing.service import billing_summary, entitlements
from modelux_server.dashboard import billing_view, web
from modelux_server.errors import ModeluxError, ValidationFailed
from modelux_server.kit.json_depth import too_deep, too_deep_message
from modelux_server.kit.pagination import MAX_LIMIT, PageRequest
from modelux_server.management_key import service as management_keys
from modelux_server.project import service as projects
from modelux_server.provider import service as providers
from modelux_server.routing import service as routing
from modelux_server.routing.strategies import SPECS
from modelux_server.runtime import Runtime

router = APIRouter(include_in_schema=False)
FIRST_PAGE = PageRequest(limit=MAX_LIMIT)

Loader = Callable[[AsyncSession, Runtime, Viewer], Awaitable[dict[str, Any]]]
# an action returns the secret to show once, or None
Action = Callable[[AsyncSession, Runtime, Principal, FormData], Awaitable[str | None]]


@dataclass(frozen=True)
class Section:
    path: str
    template: str
    load: Loader


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    if isinstance(value, str) and "\x00" in value:
        # the API bodies' rule (kit/schemas.py); raised inside the action, so the page says it
        raise ValidationFailed(
            f"{name}: must not contain NUL characters", code="invalid_characters", param=name
        )
    return value.strip() if isinstance(value, str) else ""


async def _meter(session: AsyncSession, rt: Runtime, viewer: Viewer, name: str) -> billing_view.Meter:
    summary = await billing_summary(session, rt, viewer.org_id)
    return next(m for m in billing_view.meters(summary) if m.name == name)


# ---------------------------------------------------------------- loaders


async def _load_projects(session: AsyncSession, rt: Runtime, viewer: Viewer) -> dict[str, Any]:
    page = await projects.list_projects(session, viewer.org_id, FIRST_PAGE)
    return {"projects": page.items, "meter": await _meter(session, rt, viewer, "projects")}


async def _load_api_keys(session: AsyncSession, rt: Runtime, viewer: Viewer) -> dict[str, Any]:
    project_page = await projects.list_projects(session, viewer.org_id, FIRST_PAGE)
    keys = await api_keys.list_keys(session, viewer.org_id, FIRST_PAGE)
    return {
        "projects": project_page.items,
        "names": {p.id: p.name for p in project_page.items},
        "keys": keys.items,
        "meter": await _meter(session, rt, viewer, "api_keys"),
    }


async def _load_providers(session: AsyncSession, rt: Runtime, viewer: Viewer) -> dict[str, Any]:
    page = await providers.list_credentials(session, viewer.org_id, FIRST_PAGE)
    return {
        "credentials": page.items,
        "vendors": providers.VENDORS,
        "meter": await _meter(session, rt, viewer, "provider_credentials"),
    }


async def _load_routing(session: AsyncSession, rt: Runtime, viewer: Viewer) -> dict[str, Any]:
    ent = await entitlements(session, rt, viewer.org_id)
    project_page = await projects.list_projects(session, viewer.org_id, FIRST_PAGE)
    _, views = await routing.list_configs(session, ent, viewer.org_id, FIRST_PAGE)
    return {
        "projects": project_page.items,
        "names": {p.id: p.name for p in project_page.items},
        "configs": views,
        "strategies": list(SPECS),
        "plan_name": ent.plan.name,
    }


async def _load_management_keys(session: AsyncSession, rt: Runtime, viewer: Viewer) -> dict[str, Any]:
    # listing management keys needs admin in the API too; members see why not
    keys = await management_keys.list_keys(session, viewer.org_id, FIRST_PAGE) if viewer.can_act else None
    roles = [r for r in ROLE_RANK if viewer.principal.can_grant(r)]
    return {"keys": None if keys is None else keys.items, "roles": roles}


SECTIONS = {
    "projects": Section("/projects", "projects.html", _load_projects),
    "api_keys": Section("/api-keys", "api_keys.html", _load_api_keys),
    "providers": Section("/providers", "providers.html", _load_providers),
    "routing": Section("/routing-configs", "routing_configs.html", _load_routing),
    "management_keys": Section("/management-keys", "management_keys.html", _load_management_keys),
}


# ---------------------------------------------------------------- actions


async def _create_project(s: AsyncSession, rt: Runtime, p: Principal, form: FormData) -> str | None:
    name = text(form, "name")
    if not name:
        raise ValidationFailed("Give the project a name.", param="name")
    await projects.create(s, rt, p.org_id, name=name[:200], description=text(form, "description") or None)
    return None


async def _delete_project(s: AsyncSession, rt: Runtime, p: Principal, form: FormData) -> str | None:
    await projects.delete(s, rt, p.org_id, text(form, "id"))
    return None


async def _create_api_key(s: AsyncSession, rt: Runtime, p: Principal, form: FormData) -> str | None:
    name = text(form, "name") or "default"
    _, token = await api_keys.create(s, rt, p.org_id, project_id=text(form, "project_id"), name=name[:200])
    return token


async def _revoke_api_key(s: AsyncSession, rt: Runtime, p: Principal, form: FormData) -> str | None:
    await api_keys.revoke(s, rt, p.org_id, text(form, "id"))
    return None


async def _create_provider(s: AsyncSession, rt: Runtime, p: Principal, form: FormData) -> str | None:
    name, secret = text(form, "name"), text(form, "api_key")
    if not name or not secret:
        raise ValidationFailed("A credential needs a name and an API key.")
    base_url = text(form, "base_url") or None  # validated by the service, as for the API
    await providers.create(
        s, rt, p.org_id, vendor=text(form, "vendor"), name=name[:200], api_key=secret, base_url=base_url
    )
    return None


async def _delete_provider(s: AsyncSession, rt: Runtime, p: Principal, form: FormData) -> str | None:
    await providers.delete(s, rt, p.org_id, text(form, "id"))
    return None


async def _create_routing(s: AsyncSession, rt: Runtime, p: Principal, form: FormData) -> str | None:
    raw = text(form, "fields") or "{}"
    if too_deep(raw):
        raise ValidationFailed(f"Strategy fields: {too_deep_message()}", param="fields")
    try:
        fields = json.loads(raw)
    except json.JSONDecodeError:
        fields = None
    if not isinstance(fields, dict):
        raise ValidationFailed('Strategy fields must be a JSON object, e.g. {"model": "openai/gpt-4o"}.')
    await routing.create(
        s,
        rt,
        await entitlements(s, rt, p.org_id),
        p.org_id,
        project_id=text(form, "project_id"),
        slug=text(form, "slug"),
        strategy=text(form, "strategy"),
        fields=fields,
        actor=p.actor,
    )
    return None


async def _delete_routing(s: AsyncSession, rt: Runtime, p: Principal, form: FormData) -> str | None:
    await routing.delete(s, rt, p.org_id, text(form, "id"))
    return None


async def _create_management_key(s: AsyncSession, rt: Runtime, p: Principal, form: FormData) -> str | None:
    role = text(form, "role")
    if role not in ROLE_RANK:
        raise ValidationFailed("Choose a role: owner, admin or member.", param="role")
    _, token = await management_keys.create(
        s, rt, p, name=(text(form, "name") or "dashboard")[:200], role=role
    )
    return token


async def _revoke_management_key(s: AsyncSession, rt: Runtime, p: Principal, form: FormData) -> str | None:
    await management_keys.revoke(s, rt, p, text(form, "id"))
    return None


ACTIONS: dict[tuple[str, str], tuple[Action, str]] = {
    ("projects", "create"): (_create_project, "Project created."),
    ("projects", "delete"): (_delete_project, "Project deleted; its API keys were revoked."),
    ("api_keys", "create"): (_create_api_key, "API key created."),
    ("api_keys", "revoke"): (_revoke_api_key, "API key revoked."),
    ("providers", "create"): (_create_provider, "Provider credential added."),
    ("providers", "delete"): (_delete_provider, "Provider credential deleted."),
    ("routing", "create"): (_create_routing, "Routing config created."),
    ("routing", "delete"): (_delete_routing, "Routing config deleted."),
    ("management_keys", "create"): (_create_management_key, "Management key created."),
    ("management_keys", "revoke"): (_revoke_management_key, "Management key revoked."),
}


# ---------------------------------------------------------------- handlers


async def show(request: Request, viewer: Viewer, kind: str, *, status: int = 200, **extra: Any) -> Response:
    section = SECTIONS[kind]
    rt = web.runtime(request)
    async with rt.db.session() as session:
        context = await section.load(session, rt, viewer)
    values: dict[str, Any] = {"form": {}, "secret": None, **context, **extra}
    return web.page(request, section.template, viewer, status=status, **values)


async def act(request: Request, viewer: Viewer, kind: str, verb: str) -> Response:
    action, done = ACTIONS[(kind, verb)]
    form = await web.checked_form(request, viewer)
    rt = web.runtime(request)
    try:
        async with rt.db.session() as session:
            viewer.principal.require("admin")
            secret = await action(session, rt, viewer.principal, form)
    except ModeluxError as exc:
        kept = {k: v for k, v in form.items() if isinstance(v, str) and k not in ("api_key", "csrf_token")}
        return await show(request, viewer, kind, status=exc.status, problem=web.problem(exc), form=kept)
    if secret is not None:
        # rendered directly, never redirected: the secret must not land in a URL or a store
        return await show(request, viewer, kind, secret=secret, notice=done)
    return web.see_other(f"{SECTIONS[kind].path}?done={verb}")


def _poster(kind: str, verb: str) -> Callable[..., Awaitable[Response]]:
    async def post(request: Request, viewer: Viewer = Depends(web.current_viewer)) -> Response:
        return await act(request, viewer, kind, verb)

    return post


def _register(kind: str) -> None:
    section = SECTIONS[kind]

    async def get_page(request: Request, viewer: Viewer = Depends(web.current_viewer)) -> Response:
        done = request.query_params.get("done", "")
        notice = ACTIONS[(kind, done)][1] if (kind, done) in ACTIONS else None
        return await show(request, viewer, kind, notice=notice)

    router.add_api_route(section.path, get_page, methods=["GET"], name=f"dashboard_{kind}")
    for k, verb in ACTIONS:
        if k == kind:
            router.add_api_route(
                f"{section.path}/{verb}",
                _poster(kind, verb),
                methods=["POST"],
                name=f"dashboard_{kind}_{verb}",
            )


for _kind in SECTIONS:
    _register(_kind)
