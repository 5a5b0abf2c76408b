"""Invoice payment terms through Stripe: a per-customer price, a subscription that sends
invoices, and their statuses mirrored from Stripe's webhooks."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.models import CustomPlan, PlanState
from modelux_server.services import Services


async def on_saved(
    session: AsyncSession, rt: Services, state: PlanState, plan: CustomPlan, previous: CustomPlan | None
) -> None:
    """A plan version was saved: bring its Stripe subscription in line with its terms."""
    return None


async def on_ended(session: AsyncSession, rt: Services, state: PlanState, plan: CustomPlan) -> None:
    """The organization left its Enterprise plan: stop invoicing it."""
    return None
