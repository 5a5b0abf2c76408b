"""Operator actions: assign plans by hand (manual billing) and make Enterprise plans."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing import repository
from modelux_server.billing.plan_changes import record_plan_change
from modelux_server.errors import NotFound, ValidationFailed
from modelux_server.kit.schemas import parse
from modelux_server.models import CustomPlan, PlanChange
from modelux_server.plans.catalog import LIMIT_NAMES, UNLIMITED
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

    The form of before the terms (enterprise/plans.py makes the plan): limits not given
    are unlimited, no features means the catalog's Enterprise plan's. `invoicing` and
    `sla` stay what they were, the operator's words shown to the customer and acted on
    by nothing; the terms (`modelux admin create-enterprise-plan`, /admin/v1) state
    payment terms and an SLA that are.
    """
    from modelux_server.enterprise.plans import create_plan
    from modelux_server.enterprise.schemas import PlanInput

    words = {"invoicing": (invoicing, 100), "sla": (sla, 500)}
    for what, (text, longest) in words.items():
        if text is not None and (not text.strip() or len(text) > longest or not text.isprintable()):
            raise ValidationFailed(f"{what}: one line of 1 to {longest} characters", param=what)
    body = {
        "name": name,
        "limits": limits,
        "features": features or None,
        "region": data_residency,
        "support_channel": support_channel,
    }
    given = parse(PlanInput, {k: v for k, v in body.items() if v is not None})
    plan = await create_plan(session, rt, org_id, given, actor=actor or "operator")
    plan.invoicing = invoicing.strip() if invoicing else plan.invoicing
    plan.sla = sla.strip() if sla else plan.sla
    return plan
