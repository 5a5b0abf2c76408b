"""Plan state, entitlements, and the billing summary.

Money moves through a billing provider (Stripe or manual); this module owns
what the organization is entitled to, which is always read from our tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing import repository
from modelux_server.billing.catalog import FEATURES, LIMIT_NAMES
from modelux_server.billing.entitlements import Entitlements, effective_plan
from modelux_server.errors import NotFound, ValidationFailed
from modelux_server.kit.ids import new_id
from modelux_server.kit.windows import Window, window_at
from modelux_server.models import PlanChange, PlanState
from modelux_server.runtime import Runtime

INTERVALS = ("monthly", "annual")


@dataclass(frozen=True)
class OrgPlan:
    state: PlanState
    entitlements: Entitlements


async def org_plan(session: AsyncSession, rt: Runtime, org_id: str, *, lock: bool = False) -> OrgPlan:
    state = await repository.get_plan_state(session, org_id, lock=lock)
    if state is None:
        raise NotFound("Organization not found.", code="organization_not_found")
    custom = await repository.get_custom_plan(session, state.custom_plan_id)
    plan = effective_plan(rt.catalog, state.plan_id, custom)
    return OrgPlan(state, Entitlements(plan=plan, catalog=rt.catalog, public_url=rt.public_url))


async def entitlements(session: AsyncSession, rt: Runtime, org_id: str) -> Entitlements:
    return (await org_plan(session, rt, org_id)).entitlements


async def reserve_slot(session: AsyncSession, rt: Runtime, org_id: str, limit_name: str) -> None:
    """Check that one more resource fits, holding the org lock until commit.

    The caller inserts the resource in the same transaction; the lock makes
    count-then-insert atomic per organization (see kit/db.py).
    """
    current = await org_plan(session, rt, org_id, lock=True)
    used = await repository.count_resource(session, org_id, limit_name)
    current.entitlements.ensure_room(limit_name, used)


def request_window(state: PlanState, now: datetime) -> Window:
    return window_at(state.anchor_at.day, now)


async def record_plan_change(
    session: AsyncSession,
    rt: Runtime,
    state: PlanState,
    *,
    plan_id: str,
    interval: str,
    source: str,
    actor: str | None,
    custom_plan_id: str | None = None,
) -> PlanChange | None:
    """Move the organization to a plan, effective immediately, and record it.

    Returns the change, or None when nothing changed (webhook duplicates and
    repeated operator commands land here).
    """
    if interval not in INTERVALS:
        raise ValidationFailed("interval must be 'monthly' or 'annual'", param="interval")
    if plan_id not in rt.catalog.plans:
        raise ValidationFailed(f"unknown plan '{plan_id}'", code="unknown_plan", param="plan")
    if (state.plan_id, state.interval, state.custom_plan_id) == (plan_id, interval, custom_plan_id):
        return None
    change = PlanChange(
        id=new_id("pchg"),
        org_id=state.org_id,
        from_plan=state.plan_id,
        to_plan=plan_id,
        from_interval=state.interval,
        to_interval=interval,
        source=source,
        actor=actor,
        created_at=rt.clock.now(),
    )
    from_custom_plan_id = state.custom_plan_id
    state.plan_id = plan_id
    state.interval = interval
    state.custom_plan_id = custom_plan_id
    state.updated_at = rt.clock.now()
    state.revision += 1
    session.add(change)
    # every change, whatever its source, is receipted by email in this same
    # transaction, and the usage thresholds are re-armed for the new limit
    from modelux_server.notifications import service as notifications
    from modelux_server.notifications.thresholds import check_org

    await notifications.enqueue_plan_changed(session, rt, change, from_custom_plan_id=from_custom_plan_id)
    await check_org(session, rt, state.org_id)
    rt.invalidate(org_id=state.org_id)
    return change


async def billing_summary(session: AsyncSession, rt: Runtime, org_id: str) -> dict[str, Any]:
    """Everything Settings -> Billing shows, the same for API, dashboard and MCP."""
    current = await org_plan(session, rt, org_id)
    state, ent = current.state, current.entitlements
    now = rt.clock.now()
    window = request_window(state, now)
    meters: dict[str, dict[str, Any]] = {}
    for name in LIMIT_NAMES:
        if name == "monthly_requests":
            used = await monthly_requests_used(rt, org_id, window)
            meter = _meter(ent.limit(name), used)
            meter["resets_at"] = _iso(window.end)
            meter["window"] = {"start": _iso(window.start), "end": _iso(window.end)}
        else:
            meter = _meter(ent.limit(name), await repository.count_resource(session, org_id, name))
        meters[name] = meter
    from modelux_server.routing.service import inactive_configs

    dormant = await inactive_configs(session, rt, org_id, ent)
    custom = await repository.get_custom_plan(session, state.custom_plan_id)
    return {
        "plan": {"id": ent.plan.id, "name": ent.plan.name, "interval": state.interval},
        "status": state.status,
        "billing_mode": rt.settings.billing_mode,
        "renewal_date": _iso(state.current_period_end) if state.current_period_end else _iso(window.end),
        "current_window": {"start": _iso(window.start), "end": _iso(window.end)},
        "meters": meters,
        "features": {feature: ent.has(feature) for feature in FEATURES},
        "billing_email": state.billing_email,
        "has_subscription": state.stripe_subscription_id is not None,
        "custom_plan": None
        if custom is None
        else {
            "id": custom.id,
            "data_residency": custom.data_residency,
            "invoicing": custom.invoicing,
            "support_channel": custom.support_channel,
            "sla": custom.sla,
        },
        "dormant": dormant,
    }


async def monthly_requests_used(rt: Runtime, org_id: str, window: Window) -> int:
    counter = rt.extras.get("counter")
    if counter is None:
        # an operator command has no live counter: read the ledger (exact as of
        # the serving process's last flush, a few seconds at most behind)
        from modelux_server.usage.ledger import Ledger

        used, _reserved = await Ledger(rt.db, rt.clock).load(org_id, window)
        return used
    return int(await counter.used(org_id, window))


def _meter(limit: int | None, used: int) -> dict[str, Any]:
    percent = None if not limit else round(100 * used / limit, 1)
    return {"limit": limit, "used": used, "percent": percent, "unlimited": limit is None}


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
