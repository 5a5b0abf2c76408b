"""Audit events for what other domains publish: plan changes from every source."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.audit.record import STRIPE, SYSTEM, Actor, operator, record
from modelux_server.billing.events import PlanChanged
from modelux_server.services import Services


def _actor(event: PlanChanged) -> Actor:
    who = event.actor or ""
    if event.source in ("webhook", "portal", "reconcile"):
        if event.source == "portal":
            return Actor("stripe", None, "Stripe customer portal", "portal")
        return Actor(STRIPE.type, None, STRIPE.label, event.source)
    if event.source == "operator":
        name = who.removeprefix("operator:") or "operator"
        return SYSTEM if name.startswith("system") else operator(name, "cli" if name == "cli" else "api")
    if who.startswith("usr_"):
        return Actor("user", who, None, event.source)
    if who.startswith("mk_"):
        return Actor("management_key", who, None, event.source)
    return Actor("system", who or None, None, event.source)


async def audit_plan_change(session: AsyncSession, rt: Services, event: PlanChanged) -> None:
    await record(
        session,
        rt,
        event.org_id,
        _actor(event),
        "plan.changed",
        "plan",
        event.change_id,
        before={
            "plan": event.from_plan,
            "interval": event.from_interval,
            "enterprise_plan": event.from_custom_plan_id,
        },
        after={
            "plan": event.to_plan,
            "interval": event.to_interval,
            "enterprise_plan": event.to_custom_plan_id,
        },
    )
