"""Nightly reconciliation: repair drift between our plan state and Stripe.

Webhooks can be lost (an outage longer than Stripe's retries, an endpoint
misconfigured for a while). Every organization with a Stripe customer,
subscription or open Checkout Session is compared with what Stripe holds now
and repaired through the same `apply_subscription` as the webhooks, recorded
with source "reconcile". That also ends a past_due grace that ran out with no
event from Stripe (MODELUX_PAST_DUE_GRACE_DAYS), and settles every live
subscription of the customer besides the followed one (extras.py: a
replacement is adopted, a duplicate canceled and refunded, an unpaid one
canceled). Stripe is read before the organization is locked (locking.py).
Running it twice in a row changes nothing the second time.

It runs daily at RUN_AT in Stripe mode, once across the fleet (a job lease,
jobs/schedule.py, claimed by whichever worker process gets there first), and
on demand with `modelux admin reconcile`. A run that dies half-way is run
again by another worker: every repair is idempotent and applied under the
organization's row lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import time

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing.processor import (
    BillingProcessor,
    BillingProcessorError,
    CheckoutView,
    CustomerView,
    SubscriptionView,
)
from modelux_server.billing.stripe.apply import ADOPTABLE, ENTITLED, Snapshot, apply_subscription, touch
from modelux_server.billing.stripe.extras import settle_extra
from modelux_server.billing.stripe.locking import StateKeptChanging, read_then_apply
from modelux_server.billing.stripe.refunds import pay_due
from modelux_server.billing.stripe.webhooks import DeletedCustomer, apply_customer, forget_deleted_customer
from modelux_server.billing.subscriptions import stripe_processor
from modelux_server.models import CheckoutSession, PlanState, Refund
from modelux_server.services import Services

log = logging.getLogger("modelux.billing")
RUN_AT = time(3, 0)  # UTC; a quiet hour for most customers


@dataclass(frozen=True)
class Repair:
    org_id: str
    changes: list[str]

    def __str__(self) -> str:
        return f"{self.org_id}: " + "; ".join(self.changes)


async def reconcile(rt: Services) -> list[Repair]:
    """Compare every Stripe-linked organization with Stripe; returns what was repaired."""
    billing = stripe_processor(rt)
    repairs: list[Repair] = []
    for org_id in await _linked_orgs(rt):
        try:
            repair = await reconcile_org(rt, billing, org_id)
        except (BillingProcessorError, StateKeptChanging) as exc:
            # one unreadable customer must not stop the rest; reported, retried tomorrow
            repairs.append(Repair(org_id, [f"error: {exc}"]))
            continue
        if repair is not None:
            repairs.append(repair)
    return repairs


@dataclass(frozen=True)
class _Stripe:
    """What Stripe holds for one organization, read before it is locked."""

    checkouts: list[CheckoutView]
    customer: CustomerView | None
    followed: SubscriptionView | None
    live: list[SubscriptionView]  # the customer's subscriptions that have not ended, newest first


async def reconcile_org(rt: Services, billing: BillingProcessor, org_id: str) -> Repair | None:
    async with rt.db.session() as session:
        open_checkouts = select(CheckoutSession.id).where(
            CheckoutSession.org_id == org_id, CheckoutSession.status == "open"
        )
        checkout_ids = list((await session.execute(open_checkouts)).scalars())

        async def read(state: PlanState) -> _Stripe:
            checkouts = [await billing.retrieve_checkout(i) for i in checkout_ids]
            customer_id = state.stripe_customer_id or next(
                (c.customer_id for c in checkouts if c.status == "complete" and c.customer_id), None
            )
            customer = await billing.retrieve_customer(customer_id) if customer_id else None
            followed = None
            if state.stripe_subscription_id:
                followed = await billing.retrieve_subscription(state.stripe_subscription_id)
            live = []
            if customer is not None and not customer.deleted:
                live = await billing.live_subscriptions(customer.id)
            return _Stripe(checkouts, customer, followed, live)

        async def apply(state: PlanState, seen: _Stripe) -> tuple[list[str], list[str]]:
            return await _apply(session, rt, state, seen)

        changes, extras = await read_then_apply(session, org_id, read, apply)
    for sub_id in extras:
        outcome = await settle_extra(rt, billing, org_id, sub_id, source="reconcile")
        if outcome != "nothing":
            changes.append(f"subscription {sub_id}: {outcome}")
    # a refund an end made due that no webhook or request got to pay
    changes += await pay_due(rt, billing, org_id)
    return _repair(org_id, changes)


async def _apply(
    session: AsyncSession, rt: Services, state: PlanState, seen: _Stripe
) -> tuple[list[str], list[str]]:
    """Repair the locked state from what Stripe holds; (the changes, extra subscriptions to settle)."""
    changes: list[str] = []
    for checkout in seen.checkouts:
        ours = await session.get(CheckoutSession, checkout.id)
        if ours is None or ours.status != "open" or checkout.status == "open":
            continue
        ours.status = checkout.status
        if checkout.status == "complete":
            ours.completed_at = rt.clock.now()
            if state.stripe_customer_id is None and checkout.customer_id:
                state.stripe_customer_id = checkout.customer_id
                touch(state, rt)
        changes.append(f"checkout {checkout.id}: open -> {checkout.status}")
    before = Snapshot.of(state)
    customer = seen.customer
    if customer is not None and customer.deleted:
        # a customer.deleted we never heard of: its subscriptions ended with it
        await forget_deleted_customer(
            session, rt, state, DeletedCustomer(customer.id, seen.followed), source="reconcile"
        )
        return changes + before.differences(Snapshot.of(state)), []
    if seen.followed is not None:
        await apply_subscription(session, rt, state, seen.followed, source="reconcile", actor=None)
    if state.stripe_subscription_id is None:
        # a subscription whose start we missed (or that replaced an ended one): the newest live one
        newest = next((s for s in seen.live if s.status in ADOPTABLE), None)
        if newest is not None:
            await apply_subscription(session, rt, state, newest, source="reconcile", actor=None)
    changes += before.differences(Snapshot.of(state))
    if customer is not None and customer.id == state.stripe_customer_id:
        changes += apply_customer(rt, state, customer)
    # the customer's subscriptions Stripe has not canceled; an unpaid followed
    # one was dropped by the apply above and is among them
    extras = [
        s.id for s in seen.live if s.id != state.stripe_subscription_id and s.status in (*ENTITLED, "unpaid")
    ]
    return changes, extras


def _repair(org_id: str, changes: list[str]) -> Repair | None:
    return Repair(org_id, changes) if changes else None


async def _linked_orgs(rt: Services) -> list[str]:
    async with rt.db.session() as session:
        linked = select(PlanState.org_id).where(
            or_(PlanState.stripe_customer_id.is_not(None), PlanState.stripe_subscription_id.is_not(None))
        )
        checkouts = select(CheckoutSession.org_id).where(CheckoutSession.status == "open")
        owed = select(Refund.org_id).where(Refund.status.in_(("due", "paying")))
        ids: set[str] = set()
        for stmt in (linked, checkouts, owed):
            ids |= set((await session.execute(stmt)).scalars())
    return sorted(ids)


async def nightly(rt: Services) -> None:
    """The scheduled run (jobs/schedule.py runs it once a day across the fleet, at RUN_AT)."""
    for repair in await reconcile(rt):
        log.warning("reconcile repaired %s", repair)
