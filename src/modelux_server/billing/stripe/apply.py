"""Stripe -> us: make an organization's plan state match a subscription as Stripe reports it.

The opposite direction (our catalog -> Stripe's products and prices) is catalog_push.py.

Webhooks, change-plan and reconciliation all end here, always with a
subscription freshly read from Stripe (never a webhook's payload snapshot),
under the organization's row lock (read before it: locking.py). Applying the same truth twice changes
nothing, so duplicate and out-of-order deliveries converge.

Status to plan:
  active, trialing, past_due        the subscription's plan (past_due: grace
                                    while Stripe retries the card, at most
                                    MODELUX_PAST_DUE_GRACE_DAYS from the first
                                    failure, then as ended)
  canceled, unpaid, incomplete_expired, paused  back to the free plan; the link
                                    to the subscription is dropped, the customer
                                    kept (an unpaid one is also canceled in
                                    Stripe: extras.settle_extra)
  incomplete                        not entitled yet: the plan is left as it is
                                    and only the status recorded

A paused subscription collects no payment, so it buys nothing. Only an active
or trialing subscription is adopted: one that has ended locally (grace over)
but is still past_due in Stripe comes back only once it is paid.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing.plan_changes import record_plan_change
from modelux_server.billing.processor import LOOKUP_PREFIX, PriceRef, SubscriptionView
from modelux_server.billing.stripe.refunds import ended_early, note_unused_time
from modelux_server.models import Organization, PlanChange, PlanState
from modelux_server.plans.catalog import INTERVALS, Catalog
from modelux_server.services import Services

log = logging.getLogger("modelux.billing")

ENTITLED = ("active", "trialing", "past_due")
ENDED = ("canceled", "unpaid", "incomplete_expired")
# statuses that lose the paid plan here, though Stripe has not ended the subscription
NOT_PAYING = ("paused",)
ADOPTABLE = ("active", "trialing")
_STRIPE_TO_INTERVAL = {"month": "monthly", "year": "annual"}
# the price metadata key that marks a per-customer Enterprise price (enterprise/invoicing.py)
ENTERPRISE_PRICE_MARK = "modelux_enterprise_plan"


@dataclass(frozen=True)
class Snapshot:
    plan_id: str
    interval: str
    status: str
    subscription_id: str | None
    customer_id: str | None
    anchor_at: datetime
    current_period_end: datetime | None

    @classmethod
    def of(cls, state: PlanState) -> Snapshot:
        return cls(
            state.plan_id,
            state.interval,
            state.status,
            state.stripe_subscription_id,
            state.stripe_customer_id,
            state.anchor_at,
            state.current_period_end,
        )

    def differences(self, other: Snapshot) -> list[str]:
        """Human lines for what moved from self to other (reconcile prints these)."""
        out = []
        for name in self.__dataclass_fields__:
            old, new = getattr(self, name), getattr(other, name)
            if old != new:
                show = [
                    v.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(v, datetime) else v for v in (old, new)
                ]
                out.append(f"{name}: {show[0]} -> {show[1]}")
        return out


@dataclass(frozen=True)
class Applied:
    before: Snapshot
    after: Snapshot
    change: PlanChange | None
    # a live subscription next to the one the organization follows: two paid
    # Checkouts, or a replacement for one that ended without our hearing of it
    # yet (extras.settle_extra tells which)
    extra: bool = False
    # the followed subscription ended early on request: a refund is now due (refunds.py)
    refund_due: bool = False


def touch(state: PlanState, rt: Services) -> None:
    """Mark the plan state changed: the optimistic check in locking.py relies on the revision."""
    state.updated_at = rt.clock.now()
    state.revision += 1


def plan_of_price(catalog: Catalog, price: PriceRef) -> tuple[str, str] | None:
    """(plan, interval) of one of our prices, by lookup key, else by metadata.

    Never by product or price name: names are for people and get edited. A price made
    for one customer's Enterprise plan (metadata `modelux_enterprise_plan`) is never a
    catalog plan's, whatever else it says.
    """
    if ENTERPRISE_PRICE_MARK in price.metadata:
        return None
    key = price.lookup_key or ""
    if key.startswith(LOOKUP_PREFIX):
        plan_id, _, interval = key[len(LOOKUP_PREFIX) :].rpartition("_")
        if plan_id in catalog.plans and interval in INTERVALS:
            return plan_id, interval
    plan_id = price.metadata.get("modelux_plan", "")
    interval = price.metadata.get("modelux_interval") or _STRIPE_TO_INTERVAL.get(
        price.recurring_interval or "", ""
    )
    if plan_id in catalog.plans and interval in INTERVALS:
        return plan_id, interval
    return None


async def apply_subscription(
    session: AsyncSession,
    rt: Services,
    state: PlanState,
    sub: SubscriptionView,
    *,
    source: str,
    actor: str | None,
) -> Applied:
    """Bring `state` (locked by the caller) in line with `sub`; records any plan change.

    `record_plan_change` publishes the change to its subscribers in this same
    transaction (the plan-changed email is queued with it).
    """
    before = Snapshot.of(state)
    grace_before = state.past_due_since
    change: PlanChange | None = None
    if not _follows(state, sub):
        extra = (
            state.custom_plan_id is None
            and state.stripe_subscription_id not in (None, sub.id)
            and sub.status in (*ENTITLED, "unpaid")
        )
        return Applied(before, before, None, extra=extra)
    if sub.status == "past_due":
        state.past_due_since = state.past_due_since or rt.clock.now()
    else:
        state.past_due_since = None
    refund_due = False
    if sub.status in ENDED or sub.status in NOT_PAYING or _grace_over(rt, state, sub):
        if state.stripe_subscription_id == sub.id and ended_early(sub):
            # in this transaction, so the end and the debt commit together
            refund_due = await note_unused_time(session, rt, state, sub)
        state.stripe_subscription_id = None
        state.past_due_since = None
        state.stripe_customer_id = state.stripe_customer_id or sub.customer_id
        state.status = "active"  # the free plan itself is active
        state.current_period_end = None
        # on Free the request window is anchored on the organization's creation day
        org = await session.get(Organization, state.org_id)
        if org is not None:
            state.anchor_at = org.created_at
        change = await record_plan_change(
            session,
            rt,
            state,
            plan_id=rt.catalog.default_plan.id,
            interval="monthly",
            source=source,
            actor=actor,
        )
    elif sub.status in ENTITLED:
        mapped = plan_of_price(rt.catalog, sub.price)
        if mapped is None:
            log.error("subscription %s has price %s, which maps to no plan", sub.id, sub.price.id)
            return Applied(before, before, None)
        state.stripe_subscription_id = sub.id
        state.stripe_customer_id = sub.customer_id
        state.status = sub.status
        # the request window's day follows the billing-cycle anchor; an
        # interval switch moves the anchor, and the window follows from then on
        state.anchor_at = sub.billing_cycle_anchor
        state.current_period_end = sub.current_period_end
        change = await record_plan_change(
            session, rt, state, plan_id=mapped[0], interval=mapped[1], source=source, actor=actor
        )
    elif state.stripe_subscription_id == sub.id:
        state.status = sub.status
    after = Snapshot.of(state)
    if after != before or state.past_due_since != grace_before:
        touch(state, rt)
    return Applied(before, after, change, refund_due=refund_due)


# how long a change asked of Stripe keeps its author: a plain change is over
# in seconds (a process that died meanwhile leaves the mark, which then
# lapses); one waiting for the customer to confirm a payment lasts as long as
# Stripe keeps the pending update (23 hours, "Pending updates")
PENDING_CHANGE_TTL = timedelta(minutes=10)
PENDING_UPDATE_TTL = timedelta(hours=23)


def pending_change_for(
    state: PlanState, sub: SubscriptionView, now: datetime
) -> tuple[str, str | None] | None:
    """(source, actor) of the change `sub` shows, if it is the one asked of Stripe by us.

    change-plan marks the state before calling Stripe (`pending_change`); the
    subscription's webhook can be applied before Stripe's answer reaches us,
    or (3-D Secure) hours later once the customer confirmed, and is then
    credited to whoever asked, not to the portal.
    """
    asked = state.pending_change
    if not asked or asked.get("subscription_id") != sub.id:
        return None
    if now > datetime.fromisoformat(asked["until"]):
        return None
    wanted = asked.get("price_id")
    if (wanted is None and sub.status in ENDED) or (wanted is not None and sub.price.id == wanted):
        return str(asked.get("source") or "webhook"), asked.get("actor")
    return None


def _grace_over(rt: Services, state: PlanState, sub: SubscriptionView) -> bool:
    """A past_due subscription past our own grace, however long Stripe keeps retrying."""
    if sub.status != "past_due" or state.past_due_since is None:
        return False
    grace = timedelta(days=rt.settings.past_due_grace_days)
    return rt.clock.now() - state.past_due_since > grace


def _follows(state: PlanState, sub: SubscriptionView) -> bool:
    """Whether this subscription is the one that governs the organization."""
    if state.custom_plan_id is not None:
        # an Enterprise plan is the operator's; Stripe events do not move it
        log.warning("ignoring subscription %s for %s: it has a custom plan", sub.id, state.org_id)
        return False
    if state.stripe_subscription_id in (None, sub.id):
        # a new subscription is adopted only once it is live; an ended one we
        # never followed (a late event for an old subscription) changes nothing
        return state.stripe_subscription_id == sub.id or sub.status in ADOPTABLE
    log.info(
        "subscription %s of %s is not the one it follows (%s)",
        sub.id,
        state.org_id,
        state.stripe_subscription_id,
    )
    return False
