"""Nightly reconciliation: repair drift between our plan state and Stripe.

Webhooks can be lost (an outage longer than Stripe's retries, an endpoint
misconfigured for a while). Every organization with a Stripe customer,
subscription or open Checkout Session is compared with what Stripe holds now
and repaired through the same `apply_subscription` as the webhooks, recorded
with source "reconcile". That also ends a past_due grace that ran out with no
event from Stripe (MODELUX_PAST_DUE_GRACE_DAYS). Running it twice in a row changes nothing the
second time.

It runs daily from the app when workers are enabled in Stripe mode, and on
demand with `modelux admin reconcile`. Several processes may each run it:
every repair is idempotent and taken under the organization's row lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import or_, select

from modelux_server.billing import repository
from modelux_server.billing.processor import BillingProcessor, BillingProcessorError, SubscriptionView
from modelux_server.billing.stripe.apply import ADOPTABLE, Snapshot, apply_subscription, cancel_unpaid
from modelux_server.billing.stripe.webhooks import forget_deleted_customer
from modelux_server.billing.subscriptions import stripe_processor
from modelux_server.models import CheckoutSession, PlanState
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
        except BillingProcessorError as exc:
            # one unreadable customer must not stop the rest; reported, retried tomorrow
            repairs.append(Repair(org_id, [f"error: {exc}"]))
            continue
        if repair is not None:
            repairs.append(repair)
    return repairs


async def reconcile_org(rt: Services, billing: BillingProcessor, org_id: str) -> Repair | None:
    async with rt.db.session() as session:
        state = await repository.get_plan_state(session, org_id, lock=True)
        if state is None:
            return None
        changes: list[str] = []
        open_checkouts = select(CheckoutSession).where(
            CheckoutSession.org_id == org_id, CheckoutSession.status == "open"
        )
        for checkout in (await session.execute(open_checkouts)).scalars():
            seen = await billing.retrieve_checkout(checkout.id)
            if seen.status == "open":
                continue
            checkout.status = seen.status
            if seen.status == "complete":
                checkout.completed_at = rt.clock.now()
                state.stripe_customer_id = state.stripe_customer_id or seen.customer_id
            changes.append(f"checkout {checkout.id}: open -> {seen.status}")
        before = Snapshot.of(state)
        customer = None
        if state.stripe_customer_id:
            customer = await billing.retrieve_customer(state.stripe_customer_id)
        if customer is not None and customer.deleted:
            # a customer.deleted we never heard of: its subscriptions ended with it
            await forget_deleted_customer(session, rt, billing, state, source="reconcile")
            return _repair(org_id, changes + before.differences(Snapshot.of(state)))
        # twice at most: when the followed subscription has ended, a newer live
        # one of the same customer (a missed Checkout) is adopted in the same run
        for _ in range(2):
            sub = await _governing_subscription(billing, state)
            if sub is None:
                break
            followed = state.stripe_subscription_id
            await apply_subscription(session, rt, state, sub, source="reconcile", actor=None)
            await cancel_unpaid(billing, state, sub)
            if followed is None or state.stripe_subscription_id is not None:
                break
        changes += before.differences(Snapshot.of(state))
        if state.stripe_customer_id and (customer is None or customer.id != state.stripe_customer_id):
            # the subscription applied above named another customer
            customer = await billing.retrieve_customer(state.stripe_customer_id)
        if customer is not None and customer.email and customer.email != state.billing_email:
            changes.append(f"billing_email: {state.billing_email} -> {customer.email}")
            state.billing_email = customer.email
            state.updated_at = rt.clock.now()
        return _repair(org_id, changes)


def _repair(org_id: str, changes: list[str]) -> Repair | None:
    return Repair(org_id, changes) if changes else None


async def _governing_subscription(billing: BillingProcessor, state: PlanState) -> SubscriptionView | None:
    if state.stripe_subscription_id:
        return await billing.retrieve_subscription(state.stripe_subscription_id)
    if state.stripe_customer_id:
        # a subscription whose creation we missed: the newest live one
        live = [
            s for s in await billing.live_subscriptions(state.stripe_customer_id) if s.status in ADOPTABLE
        ]
        return live[0] if live else None
    return None


async def _linked_orgs(rt: Services) -> list[str]:
    async with rt.db.session() as session:
        linked = select(PlanState.org_id).where(
            or_(PlanState.stripe_customer_id.is_not(None), PlanState.stripe_subscription_id.is_not(None))
        )
        checkouts = select(CheckoutSession.org_id).where(CheckoutSession.status == "open")
        ids = set((await session.execute(linked)).scalars()) | set(
            (await session.execute(checkouts)).scalars()
        )
    return sorted(ids)


def seconds_until_next_run(now: datetime) -> float:
    at = datetime.combine(now.date(), RUN_AT, tzinfo=now.tzinfo)
    if at <= now:
        at += timedelta(days=1)
    return max(60.0, (at - now).total_seconds())


@contextlib.asynccontextmanager
async def nightly(rt: Services) -> AsyncIterator[None]:
    """App start-up hook: the daily schedule, only with workers on and Stripe configured."""
    if not rt.settings.workers_enabled or rt.settings.billing_mode != "stripe":
        yield
        return
    task = asyncio.create_task(_every_night(rt), name="billing-reconcile")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _every_night(rt: Services) -> None:
    while True:
        await asyncio.sleep(seconds_until_next_run(rt.clock.now()))
        try:
            for repair in await reconcile(rt):
                log.warning("reconcile repaired %s", repair)
        except Exception:  # the schedule must survive a bad night
            log.exception("billing reconciliation failed")
