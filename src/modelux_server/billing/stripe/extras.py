"""A second live subscription for one organization: find out what it is and settle it.

An organization follows one subscription. Another live one of its customer
is one of:

* a replacement: the followed one has ended in Stripe and we have not heard
  yet. Both are applied; the organization moves to the new one.
* a duplicate: two Checkout Sessions (two tabs, a retry) were both paid.
  Start-checkout reuses or expires open sessions so this is rare, but a race
  can still produce one. It is canceled in Stripe, every payment it took is
  refunded (what the customer's credit balance paid goes back to the
  balance, refunds.in_full), the refund is recorded (`refunds`, kind duplicate_subscription)
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

from modelux_server.billing.processor import BillingProcessor, BillingProcessorError, SubscriptionView
from modelux_server.billing.stripe.apply import ENDED, NOT_PAYING, apply_subscription
from modelux_server.billing.stripe.locking import read_then_apply
from modelux_server.billing.stripe.refunds import (
    RefundPlan,
    in_full,
    pay_due,
    refund_duplicate,
    subscription_invoices,
)
from modelux_server.errors import NotFound
from modelux_server.models import PlanState
from modelux_server.services import Services

log = logging.getLogger("modelux.billing")

# over in Stripe for good (unpaid is ENDED for us, but Stripe can still revive it)
OVER = ("canceled", "incomplete_expired")
NOTHING, CANCELED, REFUNDED, REPLACED = "nothing", "canceled", "refunded", "replaced"


async def settle_extra(
    rt: Services, billing: BillingProcessor, org_id: str, extra_id: str, *, source: str
) -> str:
    """Settle one subscription the organization does not follow; what was done, in a word.

    "replaced", "refunded", "canceled" (unpaid) or "nothing". What it is gets
    decided under the organization's lock, from Stripe read just before
    (locking.py), so a concurrent adoption of the same subscription is never
    mistaken for a duplicate. The Stripe writes come after that commit. Safe
    to repeat: they carry idempotency keys and the refund row is unique per
    subscription.
    """

    async def read(state: PlanState) -> tuple[SubscriptionView, SubscriptionView | None]:
        extra = await billing.retrieve_subscription(extra_id)
        followed_id = state.stripe_subscription_id
        followed = None
        if followed_id and followed_id != extra_id:
            followed = await billing.retrieve_subscription(followed_id)
        return extra, followed

    async def decide(state: PlanState, seen: tuple[SubscriptionView, SubscriptionView | None]) -> str:
        extra, followed = seen
        if (
            state.custom_plan_id is not None
            or state.stripe_subscription_id == extra.id
            or extra.status in OVER
        ):
            return NOTHING
        if extra.status == "unpaid":
            return CANCELED
        if followed is None or followed.status in ENDED or followed.status in NOT_PAYING:
            # a replacement: the followed one's end first, so the new one can be adopted
            if followed is not None:
                await apply_subscription(session, rt, state, followed, source=source, actor=None)
            await apply_subscription(session, rt, state, extra, source=source, actor=None)
            return REPLACED if state.stripe_subscription_id == extra.id else NOTHING
        return REFUNDED

    async with rt.db.session() as session:
        try:
            outcome = await read_then_apply(session, org_id, read, decide)
        except NotFound:
            return NOTHING
    if outcome == CANCELED:
        await _cancel(billing, extra_id, key=f"unpaid-cancel:{extra_id}")
    elif outcome == REFUNDED:
        await _refund_duplicate(rt, billing, org_id, extra_id)
    elif outcome == REPLACED:
        await pay_due(rt, billing, org_id)  # the replaced one may have ended early
    return outcome


async def _refund_duplicate(rt: Services, billing: BillingProcessor, org_id: str, extra_id: str) -> None:
    await _cancel(billing, extra_id, key=f"duplicate-cancel:{extra_id}")
    invoices = await subscription_invoices(billing, extra_id)
    paid = [part for part in map(in_full, invoices) if part.amount or part.credit]
    plan = RefundPlan(next((i.currency for i in invoices), "usd"), paid)
    refunded = await refund_duplicate(rt, billing, org_id=org_id, sub_id=extra_id, plan=plan)
    if refunded is not None:
        log.error(
            "billing incident: duplicate subscription %s of %s canceled, %s %s cents refunded",
            extra_id,
            org_id,
            refunded,
            plan.currency,
        )


async def _cancel(billing: BillingProcessor, sub_id: str, *, key: str) -> None:
    try:
        await billing.cancel(sub_id, idempotency_key=key)
    except BillingProcessorError:
        # ended meanwhile (Stripe refuses a second cancel): that is the goal
        if (await billing.retrieve_subscription(sub_id)).status not in OVER:
            raise
