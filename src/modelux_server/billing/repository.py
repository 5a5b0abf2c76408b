"""SQL for plan state, custom plans, plan changes and resource counts."""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.kit.db import lock_row
from modelux_server.models import (
    ApiKey,
    CustomPlan,
    PlanChange,
    PlanState,
    Project,
    ProviderCredential,
)

log = logging.getLogger("modelux.billing")


async def get_plan_state(session: AsyncSession, org_id: str, *, lock: bool = False) -> PlanState | None:
    if lock:
        state: PlanState | None = await lock_row(session, PlanState, org_id)
        return state
    return await session.get(PlanState, org_id)


async def get_custom_plan(session: AsyncSession, custom_plan_id: str | None) -> CustomPlan | None:
    if custom_plan_id is None:
        return None
    return await session.get(CustomPlan, custom_plan_id)


async def count_resource(session: AsyncSession, org_id: str, limit_name: str) -> int:
    """Point-in-time count of a limited resource (live rows only)."""
    if limit_name == "projects":
        stmt = select(func.count()).where(Project.org_id == org_id, Project.deleted_at.is_(None))
    elif limit_name == "api_keys":
        stmt = select(func.count()).where(ApiKey.org_id == org_id, ApiKey.revoked_at.is_(None))
    elif limit_name == "provider_credentials":
        stmt = select(func.count()).where(
            ProviderCredential.org_id == org_id, ProviderCredential.deleted_at.is_(None)
        )
    else:
        raise ValueError(f"{limit_name} is not a point-in-time limit")
    return int((await session.execute(stmt)).scalar_one())


async def list_plan_changes(session: AsyncSession, org_id: str, limit: int = 50) -> list[PlanChange]:
    stmt = select(PlanChange).where(PlanChange.org_id == org_id).order_by(PlanChange.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def find_by_customer(
    session: AsyncSession, customer_id: str, subscription_id: str | None = None
) -> PlanState | None:
    """The organization billed as this Stripe customer.

    One customer should mean one organization, but nothing in the schema
    enforces it (an operator's copy, a restored backup): with several rows the
    one following `subscription_id` wins, else the most recently updated, and
    the ambiguity is logged rather than failing the caller.
    """
    stmt = (
        select(PlanState)
        .where(PlanState.stripe_customer_id == customer_id)
        .order_by(PlanState.updated_at.desc(), PlanState.org_id)
    )
    rows = list((await session.execute(stmt)).scalars())
    if len(rows) <= 1:
        return rows[0] if rows else None
    chosen = next(
        (r for r in rows if subscription_id and r.stripe_subscription_id == subscription_id), rows[0]
    )
    log.warning(
        "Stripe customer %s is shared by organizations %s; using %s",
        customer_id,
        ", ".join(r.org_id for r in rows),
        chosen.org_id,
    )
    return chosen
