"""Projects, API keys, provider credentials, routing configs and management keys.

Each page is a loader (what the list shows) plus actions (create, revoke).
Every action checks its fields with the management API's body schema and runs
one service call in one transaction; the service checks the role. A refusal
(402 plan limit, 403 role, 409, 422) re-renders the page with the message the
API would answer for the same input.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from modelux_server.api_key import schemas as api_key_schemas
from modelux_server.api_key import service as api_keys
from modelux_server.auth.principal import ROLE_RANK, Principal
from modelux_server.auth.sessions import Viewer
from modelux_server.billing.service import entitlements
from modelux_server.billing.summary import billing_summary
from modelux_server.dashboard import billing_view, web
from modelux_server.errors import Forbidden, ModeluxError, ValidationFailed
from modelux_server.kit.db import Session
from modelux_server.kit.json_depth import too_deep, too_deep_message
from modelux_server.kit.pagination import MAX_LIMIT, PageRequest
from modelux_server.kit.schemas import parse
from modelux_server.management_key import schemas as management_key_schemas
from modelux_server.management_key import service as management_keys
from modelux_server.project import schemas as project_schemas
from modelux_server.project import service as projects
from modelux_server.provider import schemas as provider_schemas
from modelux_server.provider import service as providers
from modelux_server.provider import vendors
from modelux_server.routing import schemas as routing_schemas
from modelux_server.routing import service as routing
from modelux_server.routing.strategies import SPECS
from modelux_server.services import Services, services_of

router = APIRouter(include_in_schema=False)
FIRST_PAGE = PageRequest(limit=MAX_LIMIT)

Loader = Callable[[Session, Services, Viewer], Awaitable[dict[str, Any]]]
# an action returns the secret to show once, or None
Action = Callable[[Session, Services, Principal, FormData], Awaitable[str | None]]


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


def fields(form: FormData, *names: str) -> dict[str, str]:
    """The named fields, for a body schema; a blank one counts as left out, so
    the schema's default (or its "missing" error) applies as in the API."""
    return {name: value for name in names if isinstance(value := form.get(name), str) and value.strip()}


async def _meter(session: Session, rt: Services, viewer: Viewer, name: str) -> billing_view.Meter:
    summary = await billing_summary(session, rt, viewer.org_id)
    return next(m for m in billing_view.meters(summary) if m.name == name)


# ---------------------------------------------------------------- loaders


async def _load_projects(session: Session, rt: Services, viewer: Viewer) -> dict[str, Any]:
    page = await projects.list_projects(session, viewer.principal, FIRST_PAGE)
    return {"projects": page.items, "meter": await _meter(session, rt, viewer, "projects")}


async def _load_api_keys(session: Session, rt: Services, viewer: Viewer) -> dict[str, Any]:
    project_page = await projects.list_projects(session, viewer.principal, FIRST_PAGE)
    keys = await api_keys.list_keys(session, viewer.principal, FIRST_PAGE)
    return {
        "projects": project_page.items,
        "names": {p.id: p.name for p in project_page.items},
        "keys": keys.items,
        "meter": await _meter(session, rt, viewer, "api_keys"),
    }


async def _load_providers(session: Session, rt: Services, viewer: Viewer) -> dict[str, Any]:
    page = await providers.list_credentials(session, viewer.principal, FIRST_PAGE)
    return {
        "credentials": page.items,
        "vendors": vendors.REGISTRY,
        "meter": await _meter(session, rt, viewer, "provider_credentials"),
    }


async def _load_routing(session: Session, rt: Services, viewer: Viewer) -> dict[str, Any]:
    ent = await entitlements(session, rt, viewer.org_id)
    project_page = await projects.list_projects(session, viewer.principal, FIRST_PAGE)
    configs = await routing.list_configs(session, rt, viewer.principal, FIRST_PAGE)
    return {
        "projects": project_page.items,
        "names": {p.id: p.name for p in project_page.items},
        "configs": configs.items,
        "strategies": list(SPECS),
        "plan_name": ent.plan.name,
    }


async def _load_management_keys(session: Session, rt: Services, viewer: Viewer) -> dict[str, Any]:
    try:
        keys = (await management_keys.list_keys(session, viewer.principal, FIRST_PAGE)).items
    except Forbidden:
        keys = None  # members may not list them; the page says why
    roles = [r for r in ROLE_RANK if viewer.principal.can_grant(r)]
    return {"keys": keys, "roles": roles}


SECTIONS = {
    "projects": Section("/projects", "projects.html", _load_projects),
    "api_keys": Section("/api-keys", "api_keys.html", _load_api_keys),
    "providers": Section("/providers", "providers.html", _load_providers),
    "routing": Section("/routing-configs", "routing_configs.html", _load_routing),
    "management_keys": Section("/management-keys", "management_keys.html", _load_management_keys),
}


# ---------------------------------------------------------------- actions


async def _create_project(s: Session, rt: Services, p: Principal, form: FormData) -> str | None:
    body = parse(project_schemas.ProjectCreate, fields(form, "name", "description"))
    await projects.create(s, rt, p, name=body.name, description=body.description)
    return None


async def _delete_project(s: Session, rt: Services, p: Principal, form: FormData) -> str | None:
    await projects.delete(s, rt, p, text(form, "id"))
    return None


async def _create_api_key(s: Session, rt: Services, p: Principal, form: FormData) -> str | None:
    body = parse(api_key_schemas.ApiKeyCreate, fields(form, "project_id", "name"))
    _, token = await api_keys.create(s, rt, p, project_id=body.project_id, name=body.name)
    return token


async def _revoke_api_key(s: Session, rt: Services, p: Principal, form: FormData) -> str | None:
    await api_keys.revoke(s, rt, p, text(form, "id"))
    return None


async def _create_provider(s: Session, rt: Services, p: Principal, form: FormData) -> str | None:
    body = parse(provider_schemas.ProviderCreate, fields(form, "vendor", "name", "api_key", "base_url"))
    await providers.create(
        s, rt, p, vendor=body.vendor, name=body.name, api_key=body.api_key, base_url=body.base_url
    )
    return None


async def _make_default_provider(s: Session, rt: Services, p: Principal, form: FormData) -> str | None:
    await providers.update(s, rt, p, text(form, "id"), {"default": True})
    return None


async def _delete_provider(s: Session, rt: Services, p: Principal, form: FormData) -> str | None:
    await providers.delete(s, rt, p, text(form, "id"))
    return None


async def _create_routing(s: Session, rt: Services, p: Principal, form: FormData) -> str | None:
    raw = text(form, "fields") or "{}"
    if too_deep(raw):
        raise ValidationFailed(f"Strategy fields: {too_deep_message()}", param="fields")
    try:
        strategy_fields = json.loads(raw)
    except json.JSONDecodeError:
        strategy_fields = None
    if not isinstance(strategy_fields, dict):
        raise ValidationFailed('Strategy fields must be a JSON object, e.g. {"model": "openai/gpt-4o"}.')
    # the strategy's fields are checked by the service, as the API's are, so
    # a refusal names where in them it sits (`targets.0.model`)
    body = parse(routing_schemas.RoutingConfigCreate, fields(form, "project_id", "slug", "strategy"))
    await routing.create(
        s,
        rt,
        p,
        project_id=body.project_id,
        slug=body.slug,
        strategy=body.strategy,
        fields=strategy_fields,
    )
    return None


async def _delete_routing(s: Session, rt: Services, p: Principal, form: FormData) -> str | None:
    await routing.delete(s, rt, p, text(form, "id"))
    return None


async def _create_management_key(s: Session, rt: Services, p: Principal, form: FormData) -> str | None:
    # the form's name field may stay blank: such keys are called "dashboard"
    given = {"name": "dashboard", **fields(form, "name", "role")}
    body = parse(management_key_schemas.ManagementKeyCreate, given)
    _, token = await management_keys.create(s, rt, p, name=body.name, role=body.role)
    return token


async def _revoke_management_key(s: Session, rt: Services, p: Principal, form: FormData) -> str | None:
    await management_keys.revoke(s, rt, p, text(form, "id"))
    return None


ACTIONS: dict[tuple[str, str], tuple[Action, str]] = {
    ("projects", "create"): (_create_project, "Project created."),
    ("projects", "delete"): (_delete_project, "Project deleted; its API keys were revoked."),
    ("api_keys", "create"): (_create_api_key, "API key created."),
    ("api_keys", "revoke"): (_revoke_api_key, "API key revoked."),
    ("providers", "create"): (_create_provider, "Provider credential added."),
    ("providers", "delete"): (_delete_provider, "Provider credential deleted."),
    ("providers", "default"): (_make_default_provider, "Default credential changed."),
    ("routing", "create"): (_create_routing, "Routing config created."),
    ("routing", "delete"): (_delete_routing, "Routing config deleted."),
    ("management_keys", "create"): (_create_management_key, "Management key created."),
    ("management_keys", "revoke"): (_revoke_management_key, "Management key revoked."),
}


# ---------------------------------------------------------------- handlers


async def show(request: Request, viewer: Viewer, kind: str, *, status: int = 200, **extra: Any) -> Response:
    section = SECTIONS[kind]
    rt = services_of(request)
    async with rt.db.session() as session:
        context = await section.load(session, rt, viewer)
    values: dict[str, Any] = {"form": {}, "secret": None, **context, **extra}
    return web.page(request, section.template, viewer, status=status, **values)


async def act(request: Request, viewer: Viewer, kind: str, verb: str) -> Response:
    action, done = ACTIONS[(kind, verb)]
    form = await web.checked_form(request, viewer)
    rt = services_of(request)
    try:
        async with rt.db.session() as session:
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
