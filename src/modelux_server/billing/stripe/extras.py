"""A second live subscription for one organization: find out what it is and settle it.

An organization follows one subscription. Another live one of its customer
is one of:

* a replacement: the followed one has ended in Stripe and we have not heard
  yet. Both are applied; the organization moves to the new one.
* a duplicate: two Checkout Sessions (two tabs, a retry) were both paid.
  Start-checkout reuses or expires open sessions so this is rare, but a race
  can still produce one. It is canceled in Stripe, every payment it took is
  refunded, the refund is recorded (`refunds`, kind duplicate_subscription)
  and the operator alerted: an ERROR log line starting "billing incident",
  which the operator's log alerting should match.
* unpaid: Stripe keeps it and would revive it on a late payment, next to
  whatever the organization subscribed to since. It is canceled.

Webhooks call `settle_extra` after their own transaction commits; the
nightly reconcile sweeps every customer's live subscriptions through it, so
an extra that a crash left unsettled is settled the next night.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing import repository
from modelux_server.billing.processor import BillingProcessor, BillingProcessorError, SubscriptionView
from modelux_server.billing.stripe.apply import ENDED, NOT_PAYING, apply_subscription
from modelux_server.billing.stripe.locking import read_then_apply, release
from modelux_server.billing.stripe.refunds import (
    DUPLICATE,
    RefundPart,
    RefundPlan,
    refund_once,
    refundable,
    subscription_invoices,
)
from modelux_server.models import PlanState
from modelux_server.services import Services

log = logging.getLogger("modelux.billing")

# over in Stripe for good (unpaid is ENDED for us, but Stripe can still revive it)
OVER = ("canceled", "incomplete_expired")


async def settle_extra(
    rt: Services, billing: BillingProcessor, org_id: str, extra_id: str, *, source: str
) -> str:
    """Settle one subscription the organization does not follow; what was done, in a word.

    "replaced", "refunded", "canceled" (unpaid) or "nothing". Safe to repeat:
    Stripe calls carry idempotency keys and the incident row is unique per
    subscription.
    """
    async with rt.db.session() as session:
        state = await repository.get_plan_state(session, org_id)
        if state is None or state.custom_plan_id is not None or state.stripe_subscription_id == extra_id:
            return "nothing"
        followed_id = state.stripe_subscription_id
        await release(session)
        extra = await billing.retrieve_subscription(extra_id)
        if extra.status in OVER:
            return "nothing"
        followed = await billing.retrieve_subscription(followed_id) if followed_id else None
        if followed is None or followed.status in ENDED or followed.status in NOT_PAYING:
            if extra.status == "unpaid":
                await _cancel(billing, extra, key=f"unpaid-cancel:{extra.id}")
                return "canceled"
            await _replace(session, rt, billing, org_id, followed_id, extra.id, source=source)
            return "replaced"
        if extra.status == "unpaid":
            await _cancel(billing, extra, key=f"unpaid-cancel:{extra.id}")
            return "canceled"
        await _refund_duplicate(rt, billing, state, extra)
        return "refunded"


async def _replace(
    session: AsyncSession,
    rt: Services,
    billing: BillingProcessor,
    org_id: str,
    followed_id: str | None,
    extra_id: str,
    *,
    source: str,
) -> None:
    async def read(state: PlanState) -> list[SubscriptionView]:
        ids = [i for i in (state.stripe_subscription_id, extra_id) if i]
        return [await billing.retrieve_subscription(i) for i in ids]

    async def apply(state: PlanState, subs: list[SubscriptionView]) -> None:
        for sub in subs:  # the followed one's end first, so the new one can be adopted
            await apply_subscription(session, rt, state, sub, source=source, actor=None)

    await read_then_apply(session, org_id, read, apply)


async def _refund_duplicate(
    rt: Services, billing: BillingProcessor, state: PlanState, extra: SubscriptionView
) -> None:
    await _cancel(billing, extra, key=f"duplicate-cancel:{extra.id}")
    invoices = await subscription_invoices(billing, extra.id)
    paid = [RefundPart(i.id, refundable(i)) for i in invoices if refundable(i) > 0]
    plan = RefundPlan(next((i.currency for i in invoices), "usd"), sum(p.amount for p in paid), paid)
    memo = "Duplicate subscription, canceled and refunded in full."
    refunded = await refund_once(
        rt, billing, org_id=state.org_id, kind=DUPLICATE, sub_id=extra.id, plan=plan, memo=memo
    )
    if refunded is not None:
        log.error(
            "billing incident: duplicate subscription %s of %s (it pays for %s): canceled, "
            "%s %s cents refunded",
            extra.id,
            state.org_id,
            state.stripe_subscription_id,
            refunded,
            plan.currency,
        )


async def _cancel(billing: BillingProcessor, sub: SubscriptionView, *, key: str) -> None:
    try:
        await billing.cancel(sub.id, idempotency_key=key)
    except BillingProcessorError:
        # ended meanwhile (Stripe refuses a second cancel): that is the goal
        if (await billing.retrieve_subscription(sub.id)).status not in OVER:
            raise
