"""Plan changes: move an organization to a plan, record it, and publish `PlanChanged`.

Every source of a change ends here: self-serve (billing/subscriptions.py),
Stripe (billing/stripe/apply.py) and the operator (billing/operator.py).
What follows from a change belongs to other domains (the receipt email, the
usage thresholds re-armed for the new limit); they subscribe in assembly.py
(billing/events.py has the rules a subscriber keeps).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing.events import PlanChanged
from modelux_server.errors import ValidationFailed
from modelux_server.kit.ids import new_id
from modelux_server.models import PlanChange, PlanState
from modelux_server.plans.catalog import INTERVALS
from modelux_server.services import Services


async def record_plan_change(
    session: AsyncSession,
    rt: Services,
    state: PlanState,
    *,
    plan_id: str,
    interval: str,
    source: str,
    actor: str | None,
    custom_plan_id: str | None = None,
) -> PlanChange | None:
    """Move the organization to a plan, effective immediately, record it and publish it.

    `state` is locked by the caller. Returns the change, or None when nothing
    changed (webhook duplicates and repeated operator commands land here).
    """
    if interval not in INTERVALS:
        raise ValidationFailed("interval must be 'monthly' or 'annual'", param="interval")
    if plan_id not in rt.catalog.plans:
        raise ValidationFailed(f"unknown plan '{plan_id}'", code="unknown_plan", param="plan")
    if (state.plan_id, state.interval, state.custom_plan_id) == (plan_id, interval, custom_plan_id):
        return None
    now = rt.clock.now()
    change = PlanChange(
        id=new_id("pchg"),
        org_id=state.org_id,
        from_plan=state.plan_id,
        to_plan=plan_id,
        from_interval=state.interval,
        to_interval=interval,
        source=source,
        actor=actor,
        created_at=now,
    )
    event = PlanChanged(
        org_id=state.org_id,
        change_id=change.id,
        from_plan=state.plan_id,
        to_plan=plan_id,
        from_interval=state.interval,
        to_interval=interval,
        source=source,
        actor=actor,
        at=now,
        from_custom_plan_id=state.custom_plan_id,
        to_custom_plan_id=custom_plan_id,
    )
    state.plan_id = plan_id
    state.interval = interval
    state.custom_plan_id = custom_plan_id
    state.updated_at = now
    state.revision += 1
    session.add(change)
    # subscribers see the new plan state, in this transaction (billing/events.py)
    for subscriber in rt.plan_change_subscribers:
        await subscriber(session, rt, event)
    rt.invalidate(session, org_id=state.org_id)
    return change
