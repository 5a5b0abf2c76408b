"""Create and edit an organization's Enterprise plan; each save is a new version.

A version takes effect at once (`record_plan_change` moves the organization to it and
publishes the change, so caches drop it and the plan-changed email goes out). The
self-serve rules hold: a feature removed stops at once but what uses it is kept (a
routing config goes dormant and works again when the feature is back), and a limit
lowered below what exists deletes nothing, it only stops new creates.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing import repository
from modelux_server.billing.plan_changes import record_plan_change
from modelux_server.enterprise import invoicing
from modelux_server.enterprise.schemas import TERM_FIELDS, PlanInput, comparable, limit_values
from modelux_server.enterprise.terms import Terms, diff
from modelux_server.errors import NotFound, ValidationFailed
from modelux_server.kit.ids import new_id
from modelux_server.models import CustomPlan, PlanState
from modelux_server.plans.catalog import FEATURES, LIMIT_NAMES
from modelux_server.services import Services


def enterprise_plan_id(rt: Services) -> str:
    """The catalog plan an Enterprise plan is made from (its rate limits, its place)."""
    return "enterprise" if "enterprise" in rt.catalog.plans else rt.catalog.ordered()[-1].id


async def locked_state(session: AsyncSession, org_id: str) -> PlanState:
    state = await repository.get_plan_state(session, org_id, lock=True)
    if state is None:
        raise NotFound(f"No organization '{org_id}'.", code="organization_not_found")
    return state


async def current_plan(session: AsyncSession, state: PlanState) -> CustomPlan | None:
    return await repository.get_custom_plan(session, state.custom_plan_id)


def _terms(values: dict[str, Any]) -> Terms:
    try:
        return Terms.model_validate({k: values[k] for k in TERM_FIELDS if values.get(k) is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValidationFailed(
            f"{where + ': ' if where else ''}{first['msg'].removeprefix('Value error, ')}",
            code="invalid_terms",
            param=where or None,
        ) from None


def _check_end_plan(rt: Services, terms: Terms) -> None:
    if terms.contract is not None:
        end_plan = rt.catalog.get(terms.contract.end_plan)
        if end_plan is None or not end_plan.self_serve:
            raise ValidationFailed(
                f"contract.end_plan must be a self-serve catalog plan (one of "
                f"{', '.join(p.id for p in rt.catalog.ordered() if p.self_serve)})",
                code="invalid_terms",
                param="contract.end_plan",
            )


async def _next_version(session: AsyncSession, org_id: str) -> int:
    top = await session.scalar(select(func.max(CustomPlan.version)).where(CustomPlan.org_id == org_id))
    return int(top or 0) + 1


async def _save(
    session: AsyncSession,
    rt: Services,
    state: PlanState,
    values: dict[str, Any],
    *,
    actor: str,
    previous: CustomPlan | None,
) -> CustomPlan:
    terms = _terms(values)
    _check_end_plan(rt, terms)
    plan = CustomPlan(
        id=new_id("cplan"),
        org_id=state.org_id,
        version=await _next_version(session, state.org_id),
        name=values["name"],
        limits={name: values["limits"].get(name) for name in LIMIT_NAMES},
        features=sorted(values["features"]),
        data_residency=values.get("region"),
        invoicing=(f"net {terms.payment.net_days}" if terms.invoiced and terms.payment else None),
        support_channel=terms.support_channel,
        sla=None if terms.sla is None else f"{terms.sla.uptime_percent}% uptime",
        terms=terms.dump(),
        actor=actor,
        # the Stripe objects carry over; invoicing.on_saved replaces what the change needs
        stripe_price_id=previous.stripe_price_id if previous else None,
        stripe_subscription_id=previous.stripe_subscription_id if previous else None,
        created_at=rt.clock.now(),
    )
    session.add(plan)
    await session.flush()
    await record_plan_change(
        session,
        rt,
        state,
        plan_id=enterprise_plan_id(rt),
        interval=state.interval,
        source="operator",
        actor=actor,
        custom_plan_id=plan.id,
    )
    await invoicing.on_saved(session, rt, state, plan, previous)
    return plan


async def create_plan(
    session: AsyncSession, rt: Services, org_id: str, given: PlanInput, *, actor: str
) -> CustomPlan:
    """Give the organization a new Enterprise plan (version 1 of it, or the next version
    if it has one already: creating again replaces the whole plan)."""
    state = await locked_state(session, org_id)
    previous = await current_plan(session, state)
    enterprise = rt.catalog.get("enterprise")
    values = given.model_dump(exclude_unset=True)
    values["name"] = values.get("name") or "Enterprise"
    values["limits"] = {name: None for name in LIMIT_NAMES} | limit_values(values.get("limits") or {})
    if values.get("features") is None:
        values["features"] = sorted(enterprise.features if enterprise else FEATURES)
    for field in TERM_FIELDS:
        values[field] = getattr(given, field)
    return await _save(session, rt, state, values, actor=actor, previous=previous)


async def edit_plan(
    session: AsyncSession, rt: Services, org_id: str, given: PlanInput, *, actor: str
) -> CustomPlan:
    """A new version of the organization's Enterprise plan with `given` changed."""
    state = await locked_state(session, org_id)
    previous = await current_plan(session, state)
    if previous is None:
        raise NotFound(
            f"Organization '{org_id}' has no Enterprise plan to edit; create one first.",
            code="enterprise_plan_not_found",
        )
    terms = Terms.load(previous.terms)
    values: dict[str, Any] = {
        "name": previous.name,
        "limits": dict(previous.limits),
        "features": list(previous.features),
        "region": previous.data_residency,
        **{field: getattr(terms, field) for field in TERM_FIELDS},
    }
    changes = given.model_dump(exclude_unset=True)
    for key in changes:
        if key == "limits":
            values["limits"] = values["limits"] | limit_values(changes["limits"] or {})
        elif key in TERM_FIELDS:
            values[key] = getattr(given, key)
        else:
            values[key] = changes[key]
    if values["name"] is None or values["features"] is None:
        raise ValidationFailed("name and features cannot be removed", code="invalid_terms")
    plan = await _save(session, rt, state, values, actor=actor, previous=previous)
    return plan


async def history(session: AsyncSession, org_id: str) -> list[tuple[CustomPlan, list[dict[str, Any]]]]:
    """Every version of the organization's Enterprise plans, newest first, each with what
    changed from the one before it."""
    rows = list(
        await session.scalars(
            select(CustomPlan).where(CustomPlan.org_id == org_id).order_by(CustomPlan.version)
        )
    )
    out: list[tuple[CustomPlan, list[dict[str, Any]]]] = []
    before: dict[str, Any] = {}
    for row in rows:
        now = comparable(row)
        out.append((row, diff(before, now) if before else []))
        before = now
    out.reverse()
    return out
