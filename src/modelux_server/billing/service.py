"""Plan state and entitlements: what an organization may do, read from our tables.

Every domain asks here (limits, features, the request window). Money moves
through a billing processor (Stripe or manual); changing the plan is
billing/plan_changes.py, and the page that shows it all is billing/summary.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing import repository
from modelux_server.errors import NotFound
from modelux_server.kit.windows import Window, window_at
from modelux_server.models import PlanState
from modelux_server.plans.entitlements import Entitlements, effective_plan
from modelux_server.services import Services


@dataclass(frozen=True)
class OrgPlan:
    state: PlanState
    entitlements: Entitlements


async def org_plan(session: AsyncSession, rt: Services, org_id: str, *, lock: bool = False) -> OrgPlan:
    """The organization's plan state and what its effective plan entitles it to.

    `lock=True` holds the organization's row until commit (plan changes, slot reservations).
    """
    state = await repository.get_plan_state(session, org_id, lock=lock)
    if state is None:
        raise NotFound("Organization not found.", code="organization_not_found")
    custom = await repository.get_custom_plan(session, state.custom_plan_id)
    plan = effective_plan(rt.catalog, state.plan_id, custom)
    return OrgPlan(state, Entitlements(plan=plan, catalog=rt.catalog, public_url=rt.public_url))


async def entitlements(session: AsyncSession, rt: Services, org_id: str) -> Entitlements:
    return (await org_plan(session, rt, org_id)).entitlements


async def reserve_slot(session: AsyncSession, rt: Services, org_id: str, limit_name: str) -> None:
    """Check that one more resource fits, holding the org lock until commit.

    The caller inserts the resource in the same transaction; the lock makes
    count-then-insert atomic per organization (see kit/db.py).
    """
    current = await org_plan(session, rt, org_id, lock=True)
    used = await repository.count_resource(session, org_id, limit_name)
    current.entitlements.ensure_room(limit_name, used)


def request_window(state: PlanState, now: datetime) -> Window:
    """The monthly request window containing `now`, which renews on the plan's anchor day."""
    return window_at(state.anchor_at.day, now)


async def monthly_requests_used(rt: Services, org_id: str, window: Window) -> int:
    # a serving process's live count; an operator command's reads the ledger
    return int(await rt.counter.used(org_id, window))
