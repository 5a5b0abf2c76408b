"""Stripe -> us for Enterprise invoices: their webhooks, and an hourly job for what they miss.

The events of an Enterprise plan's invoice subscription (enterprise/invoicing.py) and
of its invoices are claimed by `route_stripe_event`, registered in assembly.py as a
`StripeEventRoute`: they never reach billing's handlers and never move the plan. Each
re-reads the invoice (or the subscription and its recent invoices) from Stripe, never
the payload, and upserts `enterprise_invoices` on `stripe_invoice_id` under the
organization's lock, so duplicates and any delivery order converge. An invoice open
past its due date is `past_due`, and what that leads to is enterprise/overdue.py.

The job `run` (`enterprise-invoices`, hourly) repeats that for every current invoice
subscription, finishes Stripe work a save could not, and tells the operator about any
other invoice (recorded by hand, or of an ended plan) that went unpaid past its due date.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing.events import Routed
from modelux_server.billing.processor import BillingProcessor, InvoiceBilling, InvoiceView, WebhookEvent
from modelux_server.billing.stripe.locking import read_then_apply
from modelux_server.enterprise import overdue
from modelux_server.enterprise.invoicing import (
    ORG_MARK,
    PLAN_MARK,
    PO_FIELD,
    Billing,
    end_subscription,
    invoice_billing,
    sync,
)
from modelux_server.kit.ids import new_id
from modelux_server.kit.links import web_link
from modelux_server.models import CustomPlan, EnterpriseInvoice, PlanState
from modelux_server.services import Services

log = logging.getLogger("modelux.enterprise")

RUN_EVERY = timedelta(hours=1)
# invoices re-read for a subscription event: more than a year of monthly invoices
RECENT_INVOICES = 15


@dataclass(frozen=True)
class _Seen:
    """What Stripe says now, read for one event or one job round."""

    invoices: list[InvoiceView]
    past_due: bool = False  # the subscription is past_due (send_invoice: an invoice is overdue)
    overdue: frozenset[str] = field(default_factory=frozenset)  # invoice ids Stripe calls overdue


async def route_stripe_event(
    session: AsyncSession, rt: Services, billing: BillingProcessor, event: WebhookEvent
) -> Routed | None:
    """Claim the events of Enterprise invoice subscriptions (a `StripeEventRoute`).

    None for any other subscription. Invoice events re-read that invoice; subscription
    events re-read the subscription (its status says whether an invoice is overdue) and
    its recent invoices. Nothing here moves the plan, unless the operator chose to
    downgrade on an overdue invoice (enterprise/overdue.py).
    """
    sub_id, metadata = _subscription_of(event)
    if sub_id is None:
        return None
    plan = await _plan_of(session, sub_id, metadata)
    if plan is None:
        return None
    org_id, plan_id = plan.org_id, plan.id

    async def read(state: PlanState) -> _Seen:
        if event.type.startswith("invoice."):
            invoice = await billing.retrieve_invoice(event.object["id"])
            told = frozenset({invoice.id}) if event.type == "invoice.overdue" else frozenset()
            return _Seen([invoice], overdue=told)
        return await _read_subscription(billing, sub_id)

    ended = await _mirror_locked(session, rt, org_id, plan_id, read)
    return Routed(org_id, _ending(billing, ended))


def _subscription_of(event: WebhookEvent) -> tuple[str | None, Mapping[str, Any]]:
    obj = event.object
    if event.type.startswith("customer.subscription."):
        return obj["id"], obj.get("metadata") or {}
    details = (obj.get("parent") or {}).get("subscription_details") or {}
    sub_id = details.get("subscription") or obj.get("subscription")
    return (sub_id if isinstance(sub_id, str) else None), details.get("metadata") or {}


async def _plan_of(session: AsyncSession, sub_id: str, metadata: Mapping[str, Any]) -> CustomPlan | None:
    """The plan version a subscription bills: ours by id, else by the metadata we gave it
    (its first events can land before the id is stored)."""
    stmt = (
        select(CustomPlan)
        .where(CustomPlan.stripe_subscription_id == sub_id)
        .order_by(CustomPlan.version.desc())
        .limit(1)
    )
    plan = (await session.execute(stmt)).scalar_one_or_none()
    if plan is not None:
        return plan
    plan_id, org_id = metadata.get(PLAN_MARK), metadata.get(ORG_MARK)
    if not isinstance(plan_id, str) or not isinstance(org_id, str):
        return None
    plan = await session.get(CustomPlan, plan_id)
    return plan if plan is not None and plan.org_id == org_id else None


async def _read_subscription(billing: BillingProcessor, sub_id: str) -> _Seen:
    sub = await billing.retrieve_subscription(sub_id)
    page = await billing.list_invoices(subscription_id=sub_id, limit=RECENT_INVOICES)
    return _Seen(page.data, past_due=sub.status == "past_due")


async def _mirror_locked(
    session: AsyncSession,
    rt: Services,
    org_id: str,
    plan_id: str | None,
    read: Callable[[PlanState], Awaitable[_Seen]],
) -> list[str]:
    """Read Stripe, then mirror what it said under the lock; the subscriptions to end."""

    async def apply(state: PlanState, seen: _Seen) -> list[str]:
        return await mirror(session, rt, state, plan_id, seen)

    return await read_then_apply(session, org_id, read, apply)


async def mirror(
    session: AsyncSession, rt: Services, state: PlanState, plan_id: str | None, seen: _Seen
) -> list[str]:
    """Upsert the invoices Stripe reported (the organization is locked by the caller),
    then act on the ones newly overdue; the invoice subscriptions to cancel in Stripe."""
    now = rt.clock.now()
    open_ones = sorted(
        (i for i in seen.invoices if i.status == "open" and i.due_date is not None),
        key=lambda i: i.due_date or now,
    )
    # past_due says some invoice is unpaid after its due date: by our clock, or the
    # earliest due one when Stripe's clock (a test clock) is ahead of ours
    late = {i.id for i in open_ones if i.due_date is not None and i.due_date <= now} | seen.overdue
    if seen.past_due and open_ones and not late:
        late.add(open_ones[0].id)
    to_end: list[str] = []
    for view in seen.invoices:
        row = await upsert(session, rt, state.org_id, plan_id, view, late=view.id in late)
        if row is not None and row.status == "past_due" and row.overdue_notified_at is None:
            ended = await overdue.on_overdue(session, rt, state, row)
            if ended is not None:
                to_end.append(ended)
    return to_end


async def upsert(
    session: AsyncSession,
    rt: Services,
    org_id: str,
    plan_id: str | None,
    view: InvoiceView,
    *,
    late: bool,
) -> EnterpriseInvoice | None:
    """One Stripe invoice into `enterprise_invoices`, keyed on its id (None for a draft).

    Stripe keeps an unpaid invoice `open` after its due date; we call it `past_due`
    once it is overdue, and it stays so until Stripe says paid, void or uncollectible.
    """
    if view.status == "draft":
        return None
    row = (
        await session.execute(select(EnterpriseInvoice).where(EnterpriseInvoice.stripe_invoice_id == view.id))
    ).scalar_one_or_none()
    status = view.status
    if status == "open" and (late or (row is not None and row.status == "past_due")):
        status = "past_due"
    now = rt.clock.now()
    po_number = next((value for name, value in view.custom_fields if name == PO_FIELD), None)
    values: dict[str, Any] = {
        "number": view.number,
        "status": status,
        "amount_cents": view.total,
        "currency": view.currency,
        "due_at": view.due_date,
        "paid_at": (view.paid_at or now) if status == "paid" else None,
        "hosted_url": web_link(view.hosted_invoice_url) or None,
        "po_number": po_number,
        "period_start": view.period_start,
        "period_end": view.period_end,
    }
    if row is None:
        row = EnterpriseInvoice(
            id=new_id("einv"),
            org_id=org_id,
            custom_plan_id=plan_id,
            source="stripe",
            stripe_invoice_id=view.id,
            created_at=view.created,
            updated_at=now,
            **values,
        )
        session.add(row)
        await session.flush()
        return row
    changed = {k: v for k, v in values.items() if getattr(row, k) != v}
    for key, value in changed.items():
        setattr(row, key, value)
    if changed:
        row.updated_at = now
    return row


def _ending(billing: BillingProcessor, sub_ids: list[str]) -> Callable[[], Awaitable[None]] | None:
    if not sub_ids:
        return None

    async def end() -> None:
        for sub_id in sub_ids:
            await end_subscription(billing, sub_id)

    return end


# ---------------------------------------------------------------------- the hourly job


@dataclass
class Round:
    """What one run of the job did, by organization id."""

    synced: list[str] = field(default_factory=list)
    refreshed: list[str] = field(default_factory=list)
    overdue: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class InvoiceRoundFailed(Exception):
    """Some organizations could not be handled; the job is retried (the others are done)."""


async def run(rt: Services) -> Round:
    """The `enterprise-invoices` job: what webhooks and saves may have left undone.

    * a current plan version whose Stripe work did not finish (Stripe was down when it
      was saved) is synced;
    * each current invoice subscription's recent invoices are re-read and mirrored, so
      an invoice whose webhooks were all missed is still seen, and told when overdue;
    * any other invoice (recorded by hand, or of a plan that has ended) that is open
      past its due date is told once (a Stripe one re-read first, in case it was paid).
    """
    done = Round()
    billing = invoice_billing(rt)
    if billing is not None:
        async with rt.db.session() as session:
            rows = await session.execute(
                select(CustomPlan)
                .join(PlanState, PlanState.custom_plan_id == CustomPlan.id)
                .order_by(CustomPlan.org_id)
            )
            current = [(p.org_id, p.id, _lagging(p)) for p in rows.scalars()]
        for org_id, plan_id, lagging in current:
            try:
                await _check_current(rt, billing, org_id, plan_id, lagging=lagging)
            except Exception:
                log.exception("Enterprise invoicing of %s failed; the next run tries again", org_id)
                done.failed.append(org_id)
            else:
                (done.synced if lagging else done.refreshed).append(org_id)
    await _sweep(rt, billing, done)
    if done.failed:
        raise InvoiceRoundFailed(f"{len(done.failed)} organization(s) failed: {', '.join(done.failed[:20])}")
    return done


async def _check_current(
    rt: Services, billing: InvoiceBilling, org_id: str, plan_id: str, *, lagging: bool
) -> None:
    if lagging:
        async with rt.db.session() as session:
            await sync(session, rt, billing, org_id, plan_id)
    async with rt.db.session() as session:
        plan = await session.get(CustomPlan, plan_id)
        sub_id = plan.stripe_subscription_id if plan is not None else None
    if sub_id is None:
        return

    async def read(state: PlanState) -> _Seen:
        assert sub_id is not None
        return await _read_subscription(billing, sub_id)

    async with rt.db.session() as session:
        ended = await _mirror_locked(session, rt, org_id, plan_id, read)
    for end_id in ended:
        await end_subscription(billing, end_id)


def _lagging(plan: CustomPlan) -> bool:
    """Stripe work a save could not finish: invoice terms without a price, or a
    subscription left behind by terms that no longer invoice."""
    invoiced = Billing.of(plan) is not None
    return (invoiced and plan.stripe_price_id is None) or (
        not invoiced and plan.stripe_subscription_id is not None
    )


async def _sweep(rt: Services, billing: BillingProcessor | None, done: Round) -> None:
    """Every other invoice open past its due date and not yet told."""
    async with rt.db.session() as session:
        rows = await overdue.untold(session, rt.clock.now())
        late = [(r.id, r.org_id, r.custom_plan_id, r.stripe_invoice_id) for r in rows]
    for invoice_id, org_id, plan_id, stripe_id in late:
        try:
            ended: list[str]
            if stripe_id is not None and billing is not None:
                ended = await _mirror_one(rt, billing, org_id, plan_id, stripe_id)
            else:
                async with rt.db.session() as session:
                    ended = await overdue.tell_recorded(session, rt, org_id, invoice_id)
            for end_id in ended:
                if billing is not None:
                    await end_subscription(billing, end_id)
            done.overdue.append(org_id)
        except Exception:
            log.exception(
                "overdue invoice %s of %s could not be handled; the next run tries again", invoice_id, org_id
            )
            done.failed.append(org_id)


async def _mirror_one(
    rt: Services, billing: BillingProcessor, org_id: str, plan_id: str | None, invoice_id: str
) -> list[str]:
    async def read(state: PlanState) -> _Seen:
        return _Seen([await billing.retrieve_invoice(invoice_id)])

    async with rt.db.session() as session:
        return await _mirror_locked(session, rt, org_id, plan_id, read)
