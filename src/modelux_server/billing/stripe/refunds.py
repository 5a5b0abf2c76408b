"""Money back: what leaving a paid plan returns, and a duplicate subscription's full refund.

The policy (docs/decisions/0005-refunds-when-leaving.md):

* Leaving for the free plan ends the subscription now, without Stripe's
  proration credit (a Free organization has no invoice to spend it on), and
  refunds the unused part of the current period to the card, through credit
  notes on the invoices that paid for that period.
* Only paid money comes back: the refund never exceeds what the period's
  paid invoices brought in, less what was already given back on them. A
  period whose invoice was never paid returns nothing.
* A duplicate subscription (extras.py) is refunded in full: it never bought
  anything the organization did not already have.

`refund_plan` is pure, so the change-plan preview shows exactly the amount
that leaving would return. `refund_once` claims a row in `refunds` before
any money moves, so each subscription is refunded at most once per kind,
whichever path (change-plan, webhook, reconcile) gets there first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update

from modelux_server.billing.processor import (
    BillingProcessor,
    BillingProcessorError,
    InvoiceView,
    SubscriptionView,
)
from modelux_server.kit.db import insert_unless_present
from modelux_server.kit.ids import new_id
from modelux_server.models import Refund
from modelux_server.services import Services

log = logging.getLogger("modelux.billing")

UNUSED_TIME = "unused_time"
DUPLICATE = "duplicate_subscription"

# the invoices that pay for a subscription's time (not one-off invoices)
_PAYS_FOR_TIME = ("subscription_create", "subscription_cycle", "subscription_update")


@dataclass(frozen=True)
class RefundPart:
    invoice_id: str
    amount: int


@dataclass(frozen=True)
class RefundPlan:
    currency: str
    unused_value: int  # the unused part of the period at the current price, in cents
    parts: list[RefundPart]  # what goes back, newest invoice first

    @property
    def total(self) -> int:
        return sum(p.amount for p in self.parts)


def refundable(invoice: InvoiceView) -> int:
    """What can still go back to the card from this invoice."""
    if invoice.status != "paid":
        return 0
    return max(0, invoice.amount_paid - invoice.credited)


def refund_plan(sub: SubscriptionView, invoices: list[InvoiceView], at: datetime) -> RefundPlan:
    """The refund for ending `sub` at `at`, given its invoices (any order)."""
    start, end = sub.current_period_start, sub.current_period_end
    price = sub.price.unit_amount or 0
    currency = next((i.currency for i in invoices), "usd")
    if start is None or end is None or end <= start or at >= end or sub.status == "trialing":
        return RefundPlan(currency, 0, [])
    fraction = (end - max(at, start)) / (end - start)
    unused = round(price * fraction)
    paid_this_period = sorted(
        (
            i
            for i in invoices
            if i.subscription_id == sub.id
            and i.billing_reason in _PAYS_FOR_TIME
            and start <= i.created <= at
            and refundable(i) > 0
        ),
        key=lambda i: i.created,
        reverse=True,
    )
    parts: list[RefundPart] = []
    left = unused
    for invoice in paid_this_period:
        if left <= 0:
            break
        amount = min(left, refundable(invoice))
        parts.append(RefundPart(invoice.id, amount))
        left -= amount
    return RefundPlan(currency, unused, parts)


async def subscription_invoices(billing: BillingProcessor, subscription_id: str) -> list[InvoiceView]:
    """Every invoice of one subscription (a handful: one per period and plan change)."""
    found: list[InvoiceView] = []
    after: str | None = None
    while True:
        page = await billing.list_invoices(subscription_id=subscription_id, limit=100, starting_after=after)
        found.extend(page.data)
        if not page.has_more or not page.data:
            return found
        after = page.data[-1].id


async def unused_time_plan(billing: BillingProcessor, sub: SubscriptionView, at: datetime) -> RefundPlan:
    """The refund for ending `sub` at `at`, read from its invoices in Stripe."""
    return refund_plan(sub, await subscription_invoices(billing, sub.id), at)


async def refund_unused_time(
    rt: Services, billing: BillingProcessor, org_id: str, ended: SubscriptionView
) -> int | None:
    """Refund what `ended` (canceled early) had paid for beyond its end; None if done before."""
    plan = await unused_time_plan(billing, ended, ended.ended_at or rt.clock.now())
    memo = "Unused time after the subscription ended."
    return await refund_once(
        rt, billing, org_id=org_id, kind=UNUSED_TIME, sub_id=ended.id, plan=plan, memo=memo
    )


async def refund_once(
    rt: Services,
    billing: BillingProcessor,
    *,
    org_id: str,
    kind: str,
    sub_id: str,
    plan: RefundPlan,
    memo: str,
) -> int | None:
    """Claim the (kind, subscription) row, then pay the plan back; None if it was claimed before.

    A failure half-way leaves the row claimed with what was refunded so far
    and logs a billing incident for the operator: money is never sent twice.
    """
    async with rt.db.session() as session:
        values = {
            "id": new_id("rfd"),
            "org_id": org_id,
            "kind": kind,
            "subscription_id": sub_id,
            "refunded_cents": 0,
            "currency": plan.currency,
            "detail": f"claimed; {plan.total} cents planned over {len(plan.parts)} invoice(s)",
            "created_at": rt.clock.now(),
        }
        if not await insert_unless_present(session, Refund, values, ["kind", "subscription_id"]):
            return None
    refunded, error = 0, None
    for part in plan.parts:
        try:
            key = f"{kind}:{sub_id}:{part.invoice_id}"
            await billing.refund(part.invoice_id, part.amount, memo=memo, idempotency_key=key)
        except BillingProcessorError as exc:
            error = exc
            break
        refunded += part.amount
    detail = f"{refunded} of {plan.total} cents refunded" + (f"; stopped: {error}" if error else "")
    async with rt.db.session() as session:
        stmt = (
            update(Refund)
            .where(Refund.kind == kind, Refund.subscription_id == sub_id)
            .values(refunded_cents=refunded, detail=detail)
        )
        await session.execute(stmt)
    if error is not None:
        log.error("billing incident: %s refund for %s of %s: %s", kind, sub_id, org_id, detail)
    return refunded
