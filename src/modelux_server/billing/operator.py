"""Operator actions: assign plans by hand (manual billing) and make Enterprise plans."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing import repository
from modelux_server.billing.plan_changes import record_plan_change
from modelux_server.errors import NotFound, ValidationFailed
from modelux_server.kit.ids import new_id
from modelux_server.models import CustomPlan, PlanChange
from modelux_server.plans.catalog import FEATURES, LIMIT_NAMES, UNLIMITED
from modelux_server.services import Services


def parse_limits(pairs: list[str]) -> dict[str, int | None]:
    """`projects=50`, `monthly_requests=unlimited` -> {name: int | None}."""
    limits: dict[str, int | None] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or name not in LIMIT_NAMES:
            raise ValidationFailed(f"'{pair}': expected NAME=VALUE with NAME one of {', '.join(LIMIT_NAMES)}")
        raw = raw.strip().replace("_", "").replace(",", "")
        if raw == UNLIMITED:
            limits[name] = None
        elif raw.isdigit():
            limits[name] = int(raw)
        else:
            raise ValidationFailed(f"'{pair}': the value must be a whole number or 'unlimited'")
    return limits


async def set_plan(
    session: AsyncSession, rt: Services, org_id: str, plan_id: str, interval: str, actor: str | None
) -> PlanChange | None:
    """Manual billing: the operator moves an organization to a catalog plan."""
    state = await repository.get_plan_state(session, org_id, lock=True)
    if state is None:
        raise NotFound(f"No organization '{org_id}'.", code="organization_not_found")
    plan = rt.catalog.get(plan_id)
    if plan is None:
        raise ValidationFailed(f"unknown plan '{plan_id}' (known: {', '.join(rt.catalog.plans)})")
    if not plan.self_serve:
        raise ValidationFailed(
            f"'{plan_id}' is made per customer: use `modelux admin create-enterprise-plan`."
        )
    return await record_plan_change(
        session, rt, state, plan_id=plan_id, interval=interval, source="operator", actor=actor
    )


async def create_enterprise_plan(
    session: AsyncSession,
    rt: Services,
    org_id: str,
    *,
    name: str,
    limits: dict[str, int | None],
    features: list[str],
    data_residency: str | None = None,
    invoicing: str | None = None,
    support_channel: str | None = None,
    sla: str | None = None,
    actor: str | None = None,
) -> CustomPlan:
    """Create a custom plan for one organization and move it there now.

    Limits not given default to unlimited; features default to everything
    the catalog's Enterprise plan has.
    """
    state = await repository.get_plan_state(session, org_id, lock=True)
    if state is None:
        raise NotFound(f"No organization '{org_id}'.", code="organization_not_found")
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise ValidationFailed(f"unknown features: {', '.join(unknown)} (known: {', '.join(FEATURES)})")
    enterprise = rt.catalog.get("enterprise")
    chosen = features or sorted(enterprise.features if enterprise else FEATURES)
    full: dict[str, Any] = {n: limits.get(n) for n in LIMIT_NAMES}
    plan = CustomPlan(
        id=new_id("cplan"),
        org_id=org_id,
        name=name,
        limits=full,
        features=chosen,
        data_residency=data_residency,
        invoicing=invoicing,
        support_channel=support_channel,
        sla=sla,
        created_at=rt.clock.now(),
    )
    session.add(plan)
    await session.flush()
    plan_id = "enterprise" if "enterprise" in rt.catalog.plans else rt.catalog.ordered()[-1].id
    await record_plan_change(
        session,
        rt,
        state,
        plan_id=plan_id,
        interval=state.interval,
        source="operator",
        actor=actor,
        custom_plan_id=plan.id,
    )
    return plan
