"""Money back: what leaving a paid plan returns, and a duplicate subscription's full refund.

The policy (docs/decisions/0005-refunds-when-leaving.md):

* Leaving for the free plan ends the subscription now, without Stripe's
  proration credit (a Free organization has no invoice to spend it on), and
  refunds the unused part of what the current period's invoices collected,
  to the card, through credit notes on those invoices.
* Only paid money comes back, and in the proportion it was paid: each paid
  invoice of the period returns its collected amount (coupons and tax as
  they were) times the unused share of the time it paid for. A period whose
  invoice was never paid returns nothing.
* Money goes back where it came from. The card gets at most what it paid
  (`amount_paid`: Stripe refuses to refund more than the invoice's charge);
  the part the customer's credit balance paid goes back to that balance, on
  the same credit note (`credit_amount`), for their next invoices.
* A duplicate subscription (extras.py) is refunded in full: it never bought
  anything the organization did not already have.

How it cannot be lost or paid twice: `note_unused_time` writes a `due` row
in the same transaction that applies the subscription's end (apply.py), so
the end and the debt commit together. `pay_due` then claims each due row
(due -> paying, one process wins) before any money moves, and runs after
that commit: from the webhook, from change-plan, and from the nightly
reconcile for whatever an earlier attempt left due. `refund_plan` is pure,
so the change-plan preview shows exactly the amount leaving would return.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing.processor import (
    BillingProcessor,
    BillingProcessorError,
    InvoiceView,
    SubscriptionView,
)
from modelux_server.kit.db import insert_unless_present
from modelux_server.kit.ids import new_id
from modelux_server.models import PlanState, Refund
from modelux_server.services import Services

log = logging.getLogger("modelux.billing")

UNUSED_TIME = "unused_time"
DUPLICATE = "duplicate_subscription"
# a row claimed this long ago and still paying: the process died mid-way
STUCK_AFTER = timedelta(hours=1)

# the invoices that pay for a subscription's time (not one-off invoices)
_PAYS_FOR_TIME = ("subscription_create", "subscription_cycle", "subscription_update")


@dataclass(frozen=True)
class RefundPart:
    invoice_id: str
    amount: int  # back to the card
    credit: int = 0  # back to the customer's balance, which paid this part


@dataclass(frozen=True)
class RefundPlan:
    currency: str
    parts: list[RefundPart]  # what goes back, newest invoice first

    @property
    def total(self) -> int:
        """Cents back to the card."""
        return sum(p.amount for p in self.parts)

    @property
    def credit(self) -> int:
        """Cents back to the customer's balance."""
        return sum(p.credit for p in self.parts)


def refundable(invoice: InvoiceView) -> int:
    """What can still go back to the card from this invoice: never more than the card paid.

    Everything already credited counts against the card, so a refund is never
    refused for exceeding what is left on the charge.
    """
    if invoice.status != "paid":
        return 0
    return max(0, invoice.amount_paid - invoice.credited)


def creditable(invoice: InvoiceView, refund: int) -> int:
    """What can still go back to the balance once `refund` goes to the card.

    Bounded by what the balance paid and by what is left to credit on the
    invoice (Stripe refuses a credit note above the invoice's total).
    """
    if invoice.status != "paid":
        return 0
    paid = min(invoice.total, invoice.amount_paid + invoice.paid_from_balance)
    return max(0, min(invoice.paid_from_balance, paid - invoice.credited - refund))


def in_full(invoice: InvoiceView) -> RefundPart:
    """Everything the invoice took and still holds, each part back where it came from."""
    amount = refundable(invoice)
    return RefundPart(invoice.id, amount, creditable(invoice, amount))


def refund_plan(sub: SubscriptionView, invoices: list[InvoiceView], at: datetime) -> RefundPlan:
    """The refund for ending `sub` at `at`, given its invoices (any order).

    Each paid invoice of the current period paid for the time its lines
    cover (a renewal: the whole period; an upgrade's proration: from the
    change to the period's end); it returns the share of what it collected
    that covers time after `at`.
    """
    start, end = sub.current_period_start, sub.current_period_end
    currency = next((i.currency for i in invoices), "usd")
    if start is None or end is None or at >= end or sub.status == "trialing":
        return RefundPlan(currency, [])
    parts: list[RefundPart] = []
    for invoice in sorted(invoices, key=lambda i: i.created, reverse=True):
        paid_from, paid_until = invoice.period_start or start, invoice.period_end or end
        if (
            invoice.subscription_id != sub.id
            or invoice.billing_reason not in _PAYS_FOR_TIME
            or not start <= invoice.created <= at
            or paid_until <= paid_from
        ):
            continue
        unused = max(0.0, min(1.0, (paid_until - max(at, paid_from)) / (paid_until - paid_from)))
        amount = min(refundable(invoice), round(invoice.amount_paid * unused))
        credit = min(creditable(invoice, amount), round(invoice.paid_from_balance * unused))
        if amount > 0 or credit > 0:
            parts.append(RefundPart(invoice.id, amount, credit))
    return RefundPlan(currency, parts)


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


def ended_early(sub: SubscriptionView) -> bool:
    """Canceled on request before its paid period was over: its unused time is owed."""
    return (
        sub.status == "canceled"
        and sub.cancellation_reason == "cancellation_requested"
        and sub.ended_at is not None
        and sub.current_period_end is not None
        and sub.ended_at < sub.current_period_end
    )


async def note_unused_time(
    session: AsyncSession, rt: Services, state: PlanState, sub: SubscriptionView
) -> bool:
    """Record in the caller's transaction that `sub`'s unused time is owed; True if new."""
    assert sub.ended_at is not None
    now = rt.clock.now()
    values = {
        "id": new_id("rfd"),
        "org_id": state.org_id,
        "kind": UNUSED_TIME,
        "subscription_id": sub.id,
        "status": "due",
        "ended_at": sub.ended_at,
        "planned_cents": 0,
        "refunded_cents": 0,
        "currency": "usd",
        "detail": "due",
        "created_at": now,
        "updated_at": now,
    }
    return await insert_unless_present(session, Refund, values, ["kind", "subscription_id"])


async def pay_due(rt: Services, billing: BillingProcessor, org_id: str) -> list[str]:
    """Pay the organization's due refunds; one line per refund handled (reconcile prints them).

    A row another process claimed long ago and never finished is reported as
    a billing incident, not paid again: some of its money may have moved.
    """
    async with rt.db.session() as session:
        rows = list(
            (
                await session.execute(
                    select(Refund).where(Refund.org_id == org_id, Refund.status.in_(("due", "paying")))
                )
            ).scalars()
        )
    lines: list[str] = []
    for row in rows:
        if row.status == "paying":
            if rt.clock.now() - row.updated_at > STUCK_AFTER:
                log.error(
                    "billing incident: refund %s for %s is stuck (%s)",
                    row.id,
                    row.subscription_id,
                    row.detail,
                )
                lines.append(
                    f"refund for {row.subscription_id}: stuck since {row.updated_at:%Y-%m-%dT%H:%MZ}"
                )
            continue
        if not await _claim(rt, row.id):
            continue  # another process took it
        try:
            ended = await billing.retrieve_subscription(row.subscription_id)
            plan = await unused_time_plan(billing, ended, row.ended_at)
        except BillingProcessorError:
            await _set(rt, row.id, status="due", detail="Stripe could not be read; due again")
            raise
        refunded = await _pay(rt, billing, row.id, row.kind, row.subscription_id, plan, row.org_id)
        line = f"refund for {row.subscription_id}: {refunded} of {plan.total} cents"
        lines.append(line + (f" (and {plan.credit} to the balance)" if plan.credit else ""))
    return lines


async def refund_duplicate(
    rt: Services, billing: BillingProcessor, *, org_id: str, sub_id: str, plan: RefundPlan
) -> int | None:
    """Refund a duplicate subscription in full, once; None if it was handled before."""
    now = rt.clock.now()
    async with rt.db.session() as session:
        values = {
            "id": new_id("rfd"),
            "org_id": org_id,
            "kind": DUPLICATE,
            "subscription_id": sub_id,
            "status": "paying",  # claimed at birth: nobody else pays it
            "ended_at": now,
            "planned_cents": plan.total,
            "refunded_cents": 0,
            "currency": plan.currency,
            "detail": "paying",
            "created_at": now,
            "updated_at": now,
        }
        if not await insert_unless_present(session, Refund, values, ["kind", "subscription_id"]):
            return None
        row_id = str(values["id"])
    return await _pay(rt, billing, row_id, DUPLICATE, sub_id, plan, org_id)


async def _claim(rt: Services, row_id: str) -> bool:
    async with rt.db.session() as session:
        stmt = (
            update(Refund)
            .where(Refund.id == row_id, Refund.status == "due")
            .values(status="paying", detail="paying", updated_at=rt.clock.now())
        )
        claimed: int = (await session.execute(stmt)).rowcount  # type: ignore[attr-defined]
    return claimed == 1


async def _set(rt: Services, row_id: str, **values: object) -> None:
    async with rt.db.session() as session:
        await session.execute(
            update(Refund).where(Refund.id == row_id).values(updated_at=rt.clock.now(), **values)
        )


async def _pay(
    rt: Services,
    billing: BillingProcessor,
    row_id: str,
    kind: str,
    sub_id: str,
    plan: RefundPlan,
    org_id: str,
) -> int:
    """Send a claimed row's money, part by part; record what went through.

    The row's cents are the card's; what went back to the balance is in its detail.
    """
    memo = (
        "Duplicate subscription, canceled and refunded in full."
        if kind == DUPLICATE
        else "Unused time after the subscription ended."
    )
    refunded, credited, error = 0, 0, None
    for part in plan.parts:
        try:
            key = f"{kind}:{sub_id}:{part.invoice_id}"
            await billing.refund(
                part.invoice_id, part.amount, credit=part.credit, memo=memo, idempotency_key=key
            )
        except BillingProcessorError as exc:
            error = exc
            break
        refunded += part.amount
        credited += part.credit
    detail = f"{refunded} of {plan.total} cents refunded"
    if plan.credit:
        detail += f", {credited} of {plan.credit} cents back to the customer's balance"
    detail += f"; stopped: {error}" if error else ""
    await _set(
        rt,
        row_id,
        status="failed" if error else "done",
        planned_cents=plan.total,
        refunded_cents=refunded,
        currency=plan.currency,
        detail=detail,
    )
    if error is not None:
        log.error("billing incident: %s refund for %s of %s: %s", kind, sub_id, org_id, detail)
    return refunded
