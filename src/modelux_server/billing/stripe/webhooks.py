"""Stripe webhooks: verify, apply each event exactly once, converge on Stripe's truth.

1. The signature and its timestamp are checked on the raw body; a bad one
   changes nothing.
2. The event id goes into `stripe_events` in the same transaction as its
   effect: a redelivery finds it and is acknowledged without effect; a
   failure rolls both back, so Stripe's retry applies it later.
3. Handlers never trust the payload's snapshot of a subscription: they lock
   the organization and re-read the subscription from Stripe, so any order of
   delivery ends in the same state.
4. An event of a subscription billing does not follow but another domain owns
   (an Enterprise plan's invoicing) goes to that domain's route instead
   (`Services.stripe_event_routes`, billing/events.py): same transaction, same
   event record, and billing's handlers never see it.

Who gets the credit in the plan-change record (`source`):
  * a subscription we start following (Checkout): the source and actor that
    created the Checkout Session (api, dashboard, mcp), else "webhook";
  * a price change on a subscription we follow that we did not make ourselves
    (our own changes are applied before the webhook arrives and so record
    nothing again): "portal", the customer's only other way to change it;
  * an end the customer asked for (cancellation_requested): "portal";
    any other end (payment failed, unpaid, incomplete_expired): "webhook".
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing import repository
from modelux_server.billing.events import PaymentFailed, Routed
from modelux_server.billing.processor import (
    NEEDS_ACTION,
    BillingProcessor,
    BillingProcessorError,
    CustomerView,
    MalformedWebhook,
    SubscriptionView,
    WebhookEvent,
)
from modelux_server.billing.stripe.apply import ENDED, apply_subscription, pending_change_for, touch
from modelux_server.billing.stripe.extras import settle_extra
from modelux_server.billing.stripe.locking import StateKeptChanging, read_then_apply
from modelux_server.billing.stripe.refunds import pay_due
from modelux_server.errors import ServiceUnavailable
from modelux_server.models import CheckoutSession, PlanState, StripeEvent
from modelux_server.services import Services

log = logging.getLogger("modelux.billing")

# Stripe calls an event leads to, made once its transaction has committed:
# (SETTLE, org id, subscription id): a live subscription next to the followed
#   one, or an unpaid one (extras.settle_extra);
# (REFUND, org id, subscription id): the followed subscription was canceled
#   early (our change-plan, the portal, the Stripe Dashboard); the apply wrote
#   a due refund in the event's transaction, paid here (refunds.pay_due).
SETTLE, REFUND = "settle", "refund"
FollowUps = list[tuple[str, str, str]]
Handler = Callable[[AsyncSession, Services, BillingProcessor, WebhookEvent, FollowUps], Awaitable[str | None]]


async def receive(rt: Services, payload: bytes, signature: str | None) -> str:
    """Verify and apply one delivery: "processed", "duplicate" or "ignored".

    Raises `InvalidWebhook` for a bad signature, before anything is read or written.
    """
    billing = rt.billing
    event = billing.verify_webhook(payload, signature)
    handler = HANDLERS.get(event.type)
    if handler is None and event.type not in ROUTED_ONLY:
        return "ignored"  # correctly signed, not ours to act on: 200, nothing changes
    follow_ups: FollowUps = []
    routed: Routed | None = None
    try:
        async with rt.db.session() as session:
            if await session.get(StripeEvent, event.id) is not None:
                return "duplicate"
            routed = await _route(session, rt, billing, event)
            if routed is not None:
                org_id = routed.org_id
            elif handler is None:
                return "ignored"
            else:
                org_id = await handler(session, rt, billing, event, follow_ups)
            # recorded in the transaction that applied the event; on PostgreSQL a
            # concurrent delivery of the same event waits here for the first
            # one's commit, then fails on the primary key
            session.add(StripeEvent(id=event.id, type=event.type, org_id=org_id, received_at=rt.clock.now()))
            await session.flush()
    except IntegrityError:
        async with rt.db.session() as session:
            if await session.get(StripeEvent, event.id) is None:
                raise
        return "duplicate"
    except (BillingProcessorError, StateKeptChanging) as exc:
        # Stripe could not be read back, or the state kept moving while it was:
        # a non-2xx makes Stripe deliver again later
        raise ServiceUnavailable(f"Could not apply the event now: {exc}") from exc
    except (KeyError, TypeError, ValueError, AttributeError):
        # Correctly signed but not shaped like the event type says: nothing was
        # applied (the transaction rolled back), and a retry cannot fix it.
        log.warning("webhook %s (%s) is malformed; refused", event.id, event.type)
        raise MalformedWebhook("The event's object is not what its type promises.") from None
    if routed is not None and routed.then is not None:
        try:
            await routed.then()
        except (BillingProcessorError, StateKeptChanging) as exc:
            log.warning("event %s (%s) is applied; its follow-up failed: %s", event.id, event.type, exc)
    for kind, org_id, subscription_id in follow_ups:
        try:
            if kind == SETTLE:
                await settle_extra(rt, billing, org_id, subscription_id, source="webhook")
            else:
                await pay_due(rt, billing, org_id)
        except (BillingProcessorError, StateKeptChanging) as exc:
            # the event is applied; the nightly reconcile settles the extra, and
            # pays a refund left due
            log.warning("could not %s subscription %s of %s yet: %s", kind, subscription_id, org_id, exc)
    return "processed"


async def _route(
    session: AsyncSession, rt: Services, billing: BillingProcessor, event: WebhookEvent
) -> Routed | None:
    """The event, if a subscription another domain owns is behind it (billing/events.py)."""
    if not event.type.startswith(("invoice.", "customer.subscription.")):
        return None
    for route in rt.stripe_event_routes:
        routed = await route(session, rt, billing, event)
        if routed is not None:
            return routed
    return None


# ---------------------------------------------------------------------- handlers


async def _checkout_completed(
    session: AsyncSession, rt: Services, billing: BillingProcessor, event: WebhookEvent, follow_ups: FollowUps
) -> str | None:
    obj = event.object
    return await complete_checkout(
        session,
        rt,
        billing,
        checkout_id=obj["id"],
        org_hints=[obj.get("client_reference_id"), _meta(obj).get("org_id")],
        customer_id=obj.get("customer"),
        subscription_id=obj.get("subscription"),
        follow_ups=follow_ups,
    )


async def complete_checkout(
    session: AsyncSession,
    rt: Services,
    billing: BillingProcessor,
    *,
    checkout_id: str,
    org_hints: list[str | None],
    customer_id: str | None,
    subscription_id: str | None,
    follow_ups: FollowUps,
) -> str | None:
    """Follow the subscription a completed Checkout Session started.

    Shared by the `checkout.session.completed` webhook and the customer's
    return from Checkout, whichever comes first: the second finds the session
    complete and the subscription applied, and changes nothing.
    """
    ours = await session.get(CheckoutSession, checkout_id)
    org_id = await _find_org(session, [*org_hints, ours.org_id if ours else None], customer_id)
    if org_id is None:
        log.warning("checkout %s completed for no organization we know", checkout_id)
        return None

    async def read(state: PlanState) -> tuple[SubscriptionView | None, CustomerView | None]:
        sub = await billing.retrieve_subscription(subscription_id) if subscription_id else None
        # the customer as Checkout left it: the email and tax IDs it collected
        customer = await billing.retrieve_customer(customer_id) if customer_id else None
        return sub, customer

    async def apply(state: PlanState, seen: tuple[SubscriptionView | None, CustomerView | None]) -> str:
        sub, customer = seen
        checkout = await session.get(CheckoutSession, checkout_id, populate_existing=True)
        if checkout is not None and checkout.status != "complete":
            checkout.status, checkout.completed_at = "complete", rt.clock.now()
        if state.stripe_customer_id is None and customer_id:
            state.stripe_customer_id = customer_id
            touch(state, rt)
        if sub is not None:
            await _apply(session, rt, state, sub, follow_ups)
        if customer is not None and not customer.deleted and customer.id == state.stripe_customer_id:
            apply_customer(rt, state, customer)
        return state.org_id

    return await read_then_apply(session, org_id, read, apply)


async def _checkout_expired(
    session: AsyncSession, rt: Services, billing: BillingProcessor, event: WebhookEvent, follow_ups: FollowUps
) -> str | None:
    ours = await session.get(CheckoutSession, event.object["id"])
    if ours is None:
        return None
    if ours.status == "open":
        ours.status = "expired"
    return ours.org_id


async def _subscription_changed(
    session: AsyncSession, rt: Services, billing: BillingProcessor, event: WebhookEvent, follow_ups: FollowUps
) -> str | None:
    obj = event.object
    org_id = await _find_org(session, [_meta(obj).get("org_id")], obj.get("customer"), obj["id"])
    if org_id is None:
        log.info("subscription %s belongs to no organization we know", obj["id"])
        return None
    return await _refresh(session, rt, billing, org_id, obj["id"], follow_ups)


async def _refresh(
    session: AsyncSession,
    rt: Services,
    billing: BillingProcessor,
    org_id: str,
    sub_id: str,
    follow_ups: FollowUps,
) -> str:
    """Re-read one subscription from Stripe and apply it."""

    async def read(state: PlanState) -> SubscriptionView:
        return await billing.retrieve_subscription(sub_id)

    async def apply(state: PlanState, sub: SubscriptionView) -> str:
        await _apply(session, rt, state, sub, follow_ups)
        return state.org_id

    return await read_then_apply(session, org_id, read, apply)


async def _apply(
    session: AsyncSession, rt: Services, state: PlanState, sub: SubscriptionView, follow_ups: FollowUps
) -> None:
    source, actor = await _source(session, rt, state, sub)
    applied = await apply_subscription(session, rt, state, sub, source=source, actor=actor)
    if applied.extra or (sub.status == "unpaid" and state.custom_plan_id is None):
        # a second live subscription, or an unpaid one Stripe would revive on a late payment
        follow_ups.append((SETTLE, state.org_id, sub.id))
    if applied.refund_due:
        follow_ups.append((REFUND, state.org_id, sub.id))


async def _invoice(
    session: AsyncSession, rt: Services, billing: BillingProcessor, event: WebhookEvent, follow_ups: FollowUps
) -> str | None:
    """invoice.paid / payment_failed / payment_action_required: refresh the subscription's status.

    A failed renewal is also published (`PaymentFailed`, the dunning email's
    cause), once per event: Stripe sends one event per attempt, and the event
    id is deduplicated. A renewal the bank wants the customer to authenticate
    (3-D Secure) is published the same way, with the invoice's payment page.
    Only renewals (`billing_reason` "subscription_cycle"): a failed upgrade
    invoice ("subscription_update") leaves the plan and the paid period as
    they were (pending_if_incomplete), so there is no debt to chase, and the
    customer already got the refusal (and the payment page) in the
    change-plan answer.
    """
    obj = event.object
    details = (obj.get("parent") or {}).get("subscription_details") or {}
    sub_id = details.get("subscription") or obj.get("subscription")
    org_id = await _find_org(session, [_meta(details).get("org_id")], obj.get("customer"), sub_id)
    if org_id is None or not sub_id:
        return org_id

    failed = event.type in ("invoice.payment_failed", "invoice.payment_action_required")
    renewal = obj.get("billing_reason") == "subscription_cycle"

    async def read(state: PlanState) -> tuple[SubscriptionView, bool]:
        needs_action = event.type == "invoice.payment_action_required"
        if failed and renewal and not needs_action:
            # Stripe may send payment_failed for an attempt that wants authentication:
            # the email then carries the link whichever of the two events comes first
            needs_action = await billing.payment_problem(obj["id"]) == NEEDS_ACTION
        return await billing.retrieve_subscription(sub_id), needs_action

    async def apply(state: PlanState, read_back: tuple[SubscriptionView, bool]) -> str:
        sub, needs_action = read_back
        await _apply(session, rt, state, sub, follow_ups)
        if failed and renewal and state.stripe_subscription_id == sub.id:
            next_attempt = obj.get("next_payment_attempt")
            notice = PaymentFailed(
                org_id=state.org_id,
                invoice_id=obj["id"],
                attempt=int(obj.get("attempt_count") or 1),
                amount_due_cents=int(obj.get("amount_due") or 0),
                currency=obj.get("currency") or "usd",
                next_attempt_at=datetime.fromtimestamp(next_attempt, UTC) if next_attempt else None,
                action_url=obj.get("hosted_invoice_url") if needs_action else None,
            )
            for subscriber in rt.payment_failed_subscribers:
                await subscriber(session, rt, notice)
        return state.org_id

    return await read_then_apply(session, org_id, read, apply)


async def _customer_changed(
    session: AsyncSession, rt: Services, billing: BillingProcessor, event: WebhookEvent, follow_ups: FollowUps
) -> str | None:
    """customer.updated and customer.tax_id.*: the billing email and tax IDs follow the customer's.

    Both are edited in the portal (or at Checkout). A tax_id event's object is
    the tax ID, which names its customer.
    """
    obj = event.object
    customer_id = obj["id"] if event.type == "customer.updated" else obj.get("customer")
    if not isinstance(customer_id, str):
        return None
    org_id = await _find_org(session, [_meta(obj).get("org_id")], customer_id)
    if org_id is None:
        return None

    async def read(state: PlanState) -> CustomerView | None:
        if state.stripe_customer_id != customer_id:
            return None
        return await billing.retrieve_customer(customer_id)

    async def apply(state: PlanState, customer: CustomerView | None) -> str:
        if customer is not None and not customer.deleted:
            apply_customer(rt, state, customer)
        return state.org_id

    return await read_then_apply(session, org_id, read, apply)


def apply_customer(rt: Services, state: PlanState, customer: CustomerView) -> list[str]:
    """Copy the customer's billing email and tax IDs; lines for what changed (reconcile prints them)."""
    changes = []
    if customer.email and customer.email != state.billing_email:
        changes.append("billing_email changed")  # the addresses stay out of the logs
        state.billing_email = customer.email
    tax_ids = [{"type": t.type, "value": t.value} for t in customer.tax_ids]
    if tax_ids != (state.tax_ids or []):
        changes.append(f"tax_ids: {len(state.tax_ids or [])} -> {len(tax_ids)}")
        state.tax_ids = tax_ids
    if changes:
        touch(state, rt)
    return changes


async def _customer_deleted(
    session: AsyncSession, rt: Services, billing: BillingProcessor, event: WebhookEvent, follow_ups: FollowUps
) -> str | None:
    customer_id = event.object["id"]
    org_id = await _find_org(session, [_meta(event.object).get("org_id")], customer_id)
    if org_id is None:
        return None

    async def read(state: PlanState) -> DeletedCustomer | None:
        if state.stripe_customer_id != customer_id:
            return None
        return await read_deleted_customer(billing, state)

    async def apply(state: PlanState, deleted: DeletedCustomer | None) -> str:
        if deleted is not None:
            await forget_deleted_customer(session, rt, state, deleted, source="webhook")
        return state.org_id

    return await read_then_apply(session, org_id, read, apply)


@dataclass(frozen=True)
class DeletedCustomer:
    customer_id: str
    followed: SubscriptionView | None  # the subscription the organization followed, as it ended


async def read_deleted_customer(billing: BillingProcessor, state: PlanState) -> DeletedCustomer | None:
    """The organization's customer, if Stripe says it is deleted (with its followed subscription)."""
    if state.stripe_customer_id is None:
        return None
    customer = await billing.retrieve_customer(state.stripe_customer_id)
    if not customer.deleted:
        return None
    followed = None
    if state.stripe_subscription_id:
        followed = await billing.retrieve_subscription(state.stripe_subscription_id)
    return DeletedCustomer(customer.id, followed)


async def forget_deleted_customer(
    session: AsyncSession, rt: Services, state: PlanState, deleted: DeletedCustomer, *, source: str
) -> None:
    """The organization's Stripe customer was deleted: unlink it, so Checkout makes a new one.

    Stripe cancels a deleted customer's subscriptions with it; the followed
    one is applied first (its end moves the organization to Free), then both
    ids are dropped. Stripe refuses every further use of a deleted customer,
    so keeping its id would fail each Checkout for good.
    """
    if state.stripe_customer_id != deleted.customer_id:
        return
    sub = deleted.followed
    if sub is not None and sub.id == state.stripe_subscription_id:
        await apply_subscription(session, rt, state, sub, source=source, actor=None)
        if sub.status not in ENDED:
            # not what Stripe does; never leave a live subscription unfollowed
            log.error("customer %s is deleted but subscription %s is %s", sub.customer_id, sub.id, sub.status)
            return
    state.stripe_subscription_id = None
    state.stripe_customer_id = None
    state.tax_ids = None
    touch(state, rt)


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _checkout_completed,
    # a payment method that confirms later (excluded at Checkout, followed anyway):
    # the subscription is adopted once Stripe makes it active
    "checkout.session.async_payment_succeeded": _checkout_completed,
    "checkout.session.async_payment_failed": _checkout_completed,
    "checkout.session.expired": _checkout_expired,
    "customer.subscription.created": _subscription_changed,
    "customer.subscription.updated": _subscription_changed,
    "customer.subscription.deleted": _subscription_changed,
    "customer.subscription.pending_update_applied": _subscription_changed,
    "customer.subscription.pending_update_expired": _subscription_changed,
    "invoice.paid": _invoice,
    "invoice.payment_failed": _invoice,
    "invoice.payment_action_required": _invoice,
    "customer.updated": _customer_changed,
    "customer.tax_id.created": _customer_changed,
    "customer.tax_id.updated": _customer_changed,
    "customer.tax_id.deleted": _customer_changed,
    "customer.deleted": _customer_deleted,
}
# Invoice events that only a route acts on (an Enterprise plan's invoices are
# mirrored from each step: enterprise/invoicing.py); for anything else they are ignored.
ROUTED_ONLY = (
    "invoice.created",
    "invoice.finalized",
    "invoice.sent",
    "invoice.voided",
    "invoice.marked_uncollectible",
    "invoice.overdue",
)
EVENT_TYPES = sorted({*HANDLERS, *ROUTED_ONLY})


# ---------------------------------------------------------------------- mapping


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj.get("metadata") or {})


async def _find_org(
    session: AsyncSession,
    org_hints: list[str | None],
    customer_id: str | None,
    subscription_id: str | None = None,
) -> str | None:
    """The organization an event concerns (not locked): by org id hint, else by customer."""
    for org_id in org_hints:
        if org_id and await repository.get_plan_state(session, org_id) is not None:
            return org_id
    if customer_id:
        found = await repository.find_by_customer(session, customer_id, subscription_id)
        if found is not None:
            return found.org_id
    return None


async def _source(
    session: AsyncSession, rt: Services, state: PlanState, sub: SubscriptionView
) -> tuple[str, str | None]:
    """Which door a change we did not apply ourselves came through (see module docstring)."""
    asked = pending_change_for(state, sub, rt.clock.now())
    if asked is not None:
        state.pending_change = None  # used up: a later change is somebody else's
        touch(state, rt)
        return asked
    if state.stripe_subscription_id is None:
        stmt = (
            select(CheckoutSession)
            .where(CheckoutSession.org_id == state.org_id, CheckoutSession.status != "expired")
            .order_by(CheckoutSession.created_at.desc())
            .limit(1)
        )
        checkout = (await session.execute(stmt)).scalar_one_or_none()
        if checkout is not None:
            return checkout.source, checkout.actor
        return "webhook", None
    if sub.status in ENDED:
        return ("portal" if sub.cancellation_reason == "cancellation_requested" else "webhook"), None
    return "portal", None
