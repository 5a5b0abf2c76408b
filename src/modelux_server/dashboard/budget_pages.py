"""The Budgets page: each budget with its spend this period, and forms to change them.

Like the other resource pages (resource_pages.py), every action checks its
fields with the management API's body schemas and runs one budget service call
in one transaction; the service checks the role. A refusal re-renders the page
with the message the API would answer for the same input.

A form's values are text, the API's are JSON: the amount becomes a number and
the thresholds a list here, before the body schema sees them, so "12.5" is
checked as 12.5 would be and "abc" is refused as a string would be.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from modelux_server.api_key import service as api_keys
from modelux_server.auth.principal import Principal
from modelux_server.auth.sessions import Viewer
from modelux_server.budget import schemas, service
from modelux_server.budget.schemas import BudgetView
from modelux_server.dashboard import web
from modelux_server.dashboard.resource_pages import FIRST_PAGE, fields, text
from modelux_server.errors import ModeluxError, ValidationFailed
from modelux_server.kit.db import Session
from modelux_server.kit.schemas import parse
from modelux_server.notifications.messages import format_datetime_utc, format_usd_micros
from modelux_server.project import service as projects
from modelux_server.services import Services, services_of

router = APIRouter(include_in_schema=False)
PATH = "/budgets"
PERIOD_LABELS = {
    "daily": "Daily",
    "weekly": "Weekly (from Monday)",
    "monthly": "Monthly",
    "billing": "Billing period",
}
NEW_FORM = {"period": "monthly", "action": "block", "applies_to": "organization", "thresholds": "50, 80, 100"}
_PERCENTS = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class Card:
    """One budget as the page shows it."""

    id: str
    name: str
    scope_label: str
    period_label: str
    action: str
    thresholds: str
    spent: str
    cap: str
    percent: float
    level: str  # ok / warn / full, the meter's colour
    resets_at: str
    form: dict[str, str]  # the edit form's values


def _card(view: BudgetView, labels: dict[str, str]) -> Card:
    b, spend = view.budget, view.spend
    percent = spend.used_percent
    level = "full" if spend.spent_micros >= b.cap_micros else "warn" if percent >= 80 else "ok"
    target = "organization" if b.scope == "organization" else f"{b.scope}:{b.scope_id}"
    thresholds = ", ".join(str(t) for t in b.thresholds)
    return Card(
        id=b.id,
        name=b.name,
        scope_label=labels.get(target, f"{b.scope.replace('_', ' ')} {b.scope_id} (gone)"),
        period_label=PERIOD_LABELS.get(b.period, b.period),
        action=b.action,
        thresholds=thresholds,
        spent=format_usd_micros(spend.spent_micros),
        cap=format_usd_micros(b.cap_micros),
        percent=percent,
        level=level,
        resets_at=format_datetime_utc(spend.period.end),
        form={
            "name": b.name,
            "applies_to": target,
            "amount_usd": format(Decimal(b.cap_micros) / schemas.MICROS, "f"),
            "period": b.period,
            "action": b.action,
            "thresholds": thresholds,
        },
    )


async def _load(session: Session, rt: Services, viewer: Viewer) -> dict[str, Any]:
    principal = viewer.principal
    views = await service.list_budgets(session, rt, principal, FIRST_PAGE)
    project_page = await projects.list_projects(session, principal, FIRST_PAGE)
    names = {p.id: p.name for p in project_page.items}
    keys = (await api_keys.list_keys(session, principal, FIRST_PAGE)).items
    targets = [("organization", "The whole organization")]
    targets += [(f"project:{p.id}", f"Project {p.name}") for p in project_page.items]
    targets += [
        (f"api_key:{k.id}", f"API key {k.name} ({names.get(k.project_id, k.project_id)})") for k in keys
    ]
    labels = dict(targets)
    return {
        "budgets": [_card(view, labels) for view in views.items],
        "targets": targets,
        "periods": list(PERIOD_LABELS.items()),
    }


# ---------------------------------------------------------------- form -> body


def _amount(value: str) -> int | float:
    cleaned = value.strip().removeprefix("$").strip()
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise ValidationFailed(
            "amount_usd: must be a number of US dollars, e.g. 250 or 12.5", param="amount_usd"
        ) from None
    if amount.is_finite() and amount == amount.to_integral_value():
        return int(amount)
    return float(amount)  # NaN and the infinities stay what they are, and are refused as such


def _percents(value: str) -> list[int]:
    parts = [part for part in _PERCENTS.split(value) if part]
    if not all(part.isascii() and part.isdigit() and len(part) <= 6 for part in parts):
        raise ValidationFailed(
            "thresholds: whole percents separated by commas, e.g. 50, 80, 100", param="thresholds"
        )
    return [int(part) for part in parts]


def _body(form: FormData) -> dict[str, Any]:
    """The form as the API body it stands for; blank fields count as left out."""
    body: dict[str, Any] = fields(form, "name", "period", "action")
    target = text(form, "applies_to")
    if target:
        scope, _, scope_id = target.partition(":")
        body["scope"] = scope
        if scope_id:
            body["scope_id"] = scope_id
    if amount := text(form, "amount_usd"):
        body["amount_usd"] = _amount(amount)
    if thresholds := text(form, "thresholds"):
        body["thresholds"] = _percents(thresholds)
    return body


# ---------------------------------------------------------------- actions

Action = Callable[[Session, Services, Principal, FormData], Awaitable[None]]


async def _create(s: Session, rt: Services, p: Principal, form: FormData) -> None:
    body = parse(schemas.BudgetCreate, _body(form))
    await service.create(
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
    )


async def _update(s: Session, rt: Services, p: Principal, form: FormData) -> None:
    budget_id = text(form, "id")
    current = (await service.get(s, rt, p, budget_id)).budget
    body = _body(form)
    if body.get("scope") == current.scope and body.get("scope_id", current.scope_id) == current.scope_id:
        # the form sends every field: an unchanged target is not re-checked (its project may be gone)
        body.pop("scope")
        body.pop("scope_id", None)
    changes = parse(schemas.BudgetUpdate, body).model_dump(exclude_unset=True)
    await service.update(s, rt, p, budget_id, changes)


async def _delete(s: Session, rt: Services, p: Principal, form: FormData) -> None:
    await service.delete(s, rt, p, text(form, "id"))


ACTIONS: dict[str, tuple[Action, str]] = {
    "create": (_create, "Budget created."),
    "update": (_update, "Budget saved."),
    "delete": (_delete, "Budget deleted."),
}


# ---------------------------------------------------------------- handlers


async def _show(request: Request, viewer: Viewer, *, status: int = 200, **extra: Any) -> Response:
    rt = services_of(request)
    async with rt.db.session() as session:
        context = await _load(session, rt, viewer)
    values: dict[str, Any] = {"form": NEW_FORM, "editing": None, **context, **extra}
    return web.page(request, "budgets.html", viewer, status=status, **values)


@router.get(PATH, name="dashboard_budgets")
async def budgets_page(request: Request, viewer: Viewer = Depends(web.current_viewer)) -> Response:
    done = request.query_params.get("done", "")
    return await _show(request, viewer, notice=ACTIONS[done][1] if done in ACTIONS else None)


def _poster(verb: str) -> Callable[..., Awaitable[Response]]:
    action, _ = ACTIONS[verb]

    async def post(request: Request, viewer: Viewer = Depends(web.current_viewer)) -> Response:
        form = await web.checked_form(request, viewer)
        rt = services_of(request)
        try:
            async with rt.db.session() as session:
                await action(session, rt, viewer.principal, form)
        except ModeluxError as exc:
            kept = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
            # a refused edit keeps its form open with what was typed; a refused create fills the new form
            extra = {"editing": kept} if verb == "update" else {"form": kept} if verb == "create" else {}
            return await _show(request, viewer, status=exc.status, problem=web.problem(exc), **extra)
        return web.see_other(f"{PATH}?done={verb}")

    return post


for _verb in ACTIONS:
    router.add_api_route(
        f"{PATH}/{_verb}", _poster(_verb), methods=["POST"], name=f"dashboard_budgets_{_verb}"
    )
