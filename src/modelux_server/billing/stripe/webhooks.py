"""Stripe webhooks: verify, apply each event exactly once, converge on Stripe's truth.

1. The signature and its timestamp are checked on the raw body; a bad one
   changes nothing.
2. The event id goes into `stripe_events` in the same transaction as its
   effect: a redelivery finds it and is acknowledged without effect; a
   failure rolls both back, so Stripe's retry applies it later.
3. Handlers never trust the payload's snapshot of a subscription: they lock
   the organization and re-read the subscription from Stripe, so any order of
   delivery ends in the same state.

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
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing import repository
from modelux_server.billing.events import PaymentFailed
from modelux_server.billing.processor import (
    BillingProcessor,
    BillingProcessorError,
    MalformedWebhook,
    SubscriptionView,
    WebhookEvent,
)
from modelux_server.billing.stripe.apply import ENDED, apply_subscription, cancel_unpaid
from modelux_server.errors import ServiceUnavailable
from modelux_server.models import CheckoutSession, PlanState, StripeEvent
from modelux_server.services import Services

log = logging.getLogger("modelux.billing")

Handler = Callable[[AsyncSession, Services, BillingProcessor, WebhookEvent], Awaitable[str | None]]


async def receive(rt: Services, payload: bytes, signature: str | None) -> str:
    """Verify and apply one delivery: "processed", "duplicate" or "ignored".

    Raises `InvalidWebhook` for a bad signature, before anything is read or written.
    """
    billing = rt.billing
    event = billing.verify_webhook(payload, signature)
    handler = HANDLERS.get(event.type)
    if handler is None:
        return "ignored"  # correctly signed, not ours to act on: 200, nothing changes
    try:
        async with rt.db.session() as session:
            if await session.get(StripeEvent, event.id) is not None:
                return "duplicate"
            record = StripeEvent(id=event.id, type=event.type, org_id=None, received_at=rt.clock.now())
            session.add(record)
            # on PostgreSQL a concurrent delivery of the same event waits here
            # for the first one's commit, then fails on the primary key
            await session.flush()
            record.org_id = await handler(session, rt, billing, event)
    except IntegrityError:
        async with rt.db.session() as session:
            if await session.get(StripeEvent, event.id) is None:
                raise
        return "duplicate"
    except BillingProcessorError as exc:
        # Stripe could not be read back; a non-2xx makes it deliver again later
        raise ServiceUnavailable(f"Could not re-read the event's object from Stripe: {exc}") from exc
    except (KeyError, TypeError, ValueError, AttributeError):
        # Correctly signed but not shaped like the event type says: nothing was
        # applied (the transaction rolled back), and a retry cannot fix it.
        log.warning("webhook %s (%s) is malformed; refused", event.id, event.type)
        raise MalformedWebhook("The event's object is not what its type promises.") from None
    return "processed"


# ---------------------------------------------------------------------- handlers


async def _checkout_completed(
    session: AsyncSession, rt: Services, billing: BillingProcessor, event: WebhookEvent
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
) -> str | None:
    """Follow the subscription a completed Checkout Session started.

    Shared by the `checkout.session.completed` webhook and the customer's
    return from Checkout, whichever comes first: the second finds the session
    complete and the subscription applied, and changes nothing.
    """
    ours = await session.get(CheckoutSession, checkout_id)
    hints = [*org_hints, ours.org_id if ours else None]
    state = await _locked_state(session, hints, customer_id)
    if state is None:
        log.warning("checkout %s completed for no organization we know", checkout_id)
        return None
    if ours is not None and ours.status != "complete":
        ours.status, ours.completed_at = "complete", rt.clock.now()
    state.stripe_customer_id = state.stripe_customer_id or customer_id
    if subscription_id:
        sub = await billing.retrieve_subscription(subscription_id)
        source, actor = await _source(session, state, sub)
        await apply_subscription(session, rt, state, sub, source=source, actor=actor)
    return state.org_id


async def _checkout_expired(
    session: AsyncSession, rt: Services, billing: BillingProcessor, event: WebhookEvent
) -> str | None:
    ours = await session.get(CheckoutSession, event.object["id"])
    if ours is None:
        return None
    if ours.status == "open":
        ours.status = "expired"
    return ours.org_id


async def _subscription_changed(
    session: AsyncSession, rt: Services, billing: BillingProcessor, event: WebhookEvent
) -> str | None:
    obj = event.object
    state = await _locked_state(session, [_meta(obj).get("org_id")], obj.get("customer"), obj["id"])
    if state is None:
        log.info("subscription %s belongs to no organization we know", obj["id"])
        return None
    sub = await billing.retrieve_subscription(obj["id"])
    source, actor = await _source(session, state, sub)
    await apply_subscription(session, rt, state, sub, source=source, actor=actor)
    await cancel_unpaid(billing, state, sub)
    return state.org_id


async def _invoice(
    session: AsyncSession, rt: Services, billing: BillingProcessor, event: WebhookEvent
) -> str | None:
    """invoice.paid / invoice.payment_failed: refresh the subscription's status.

    A failed renewal is also published (`PaymentFailed`, the dunning email's
    cause), once per event: Stripe sends one event per attempt, and the event
    id is deduplicated. Only renewals (`billing_reason` "subscription_cycle"):
    a failed upgrade invoice ("subscription_update") leaves the plan and the
    paid period as they were (pending_if_incomplete), so there is no debt to
    chase, and the customer already got the refusal in the change-plan answer.
    """
    obj = event.object
    details = (obj.get("parent") or {}).get("subscription_details") or {}
    sub_id = details.get("subscription") or obj.get("subscription")
    state = await _locked_state(session, [_meta(details).get("org_id")], obj.get("customer"), sub_id)
    if state is None or not sub_id:
        return state.org_id if state else None
    sub = await billing.retrieve_subscription(sub_id)
    source, actor = await _source(session, state, sub)
    await apply_subscription(session, rt, state, sub, source=source, actor=actor)
    if (
        event.type == "invoice.payment_failed"
        and obj.get("billing_reason") == "subscription_cycle"
        and state.stripe_subscription_id == sub.id
    ):
        next_attempt = obj.get("next_payment_attempt")
        failed = PaymentFailed(
            org_id=state.org_id,
            invoice_id=obj["id"],
            attempt=int(obj.get("attempt_count") or 1),
            amount_due_cents=int(obj.get("amount_due") or 0),
            currency=obj.get("currency") or "usd",
            next_attempt_at=datetime.fromtimestamp(next_attempt, UTC) if next_attempt else None,
        )
        for subscriber in rt.payment_failed_subscribers:
            await subscriber(session, rt, failed)
    return state.org_id


async def _customer_updated(
    session: AsyncSession, rt: Services, billing: BillingProcessor, event: WebhookEvent
) -> str | None:
    """The billing email follows the Stripe customer's email (edited in the portal)."""
    state = await _locked_state(session, [_meta(event.object).get("org_id")], event.object["id"])
    if state is None:
        return None
    customer = await billing.retrieve_customer(event.object["id"])
    if customer.email and customer.email != state.billing_email and not customer.deleted:
        state.billing_email = customer.email
        state.updated_at = rt.clock.now()
    return state.org_id


async def _customer_deleted(
    session: AsyncSession, rt: Services, billing: BillingProcessor, event: WebhookEvent
) -> str | None:
    state = await _locked_state(session, [_meta(event.object).get("org_id")], event.object["id"])
    if state is None or state.stripe_customer_id != event.object["id"]:
        return state.org_id if state else None
    customer = await billing.retrieve_customer(event.object["id"])
    if customer.deleted:
        await forget_deleted_customer(session, rt, billing, state, source="webhook")
    return state.org_id


async def forget_deleted_customer(
    session: AsyncSession, rt: Services, billing: BillingProcessor, state: PlanState, *, source: str
) -> None:
    """The organization's Stripe customer was deleted: unlink it, so Checkout makes a new one.

    Stripe cancels a deleted customer's subscriptions with it; the followed
    one is applied first (its end moves the organization to Free), then both
    ids are dropped. Stripe refuses every further use of a deleted customer,
    so keeping its id would fail each Checkout for good.
    """
    if state.stripe_subscription_id:
        sub = await billing.retrieve_subscription(state.stripe_subscription_id)
        await apply_subscription(session, rt, state, sub, source=source, actor=None)
        if sub.status not in ENDED:
            # not what Stripe does; never leave a live subscription unfollowed
            log.error("customer %s is deleted but subscription %s is %s", sub.customer_id, sub.id, sub.status)
            return
    state.stripe_subscription_id = None
    state.stripe_customer_id = None
    state.updated_at = rt.clock.now()


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _checkout_completed,
    "checkout.session.expired": _checkout_expired,
    "customer.subscription.created": _subscription_changed,
    "customer.subscription.updated": _subscription_changed,
    "customer.subscription.deleted": _subscription_changed,
    "customer.subscription.pending_update_applied": _subscription_changed,
    "invoice.paid": _invoice,
    "invoice.payment_failed": _invoice,
    "customer.updated": _customer_updated,
    "customer.deleted": _customer_deleted,
}
EVENT_TYPES = sorted(HANDLERS)


# ---------------------------------------------------------------------- mapping


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj.get("metadata") or {})


async def _locked_state(
    session: AsyncSession,
    org_hints: list[str | None],
    customer_id: str | None,
    subscription_id: str | None = None,
) -> PlanState | None:
    """The organization an event concerns, locked: by org id hint, else by customer."""
    for org_id in org_hints:
        if org_id:
            state = await repository.get_plan_state(session, org_id, lock=True)
            if state is not None:
                return state
    if customer_id:
        found = await repository.find_by_customer(session, customer_id, subscription_id)
        if found is not None:
            return await repository.get_plan_state(session, found.org_id, lock=True)
    return None


async def _source(session: AsyncSession, state: PlanState, sub: SubscriptionView) -> tuple[str, str | None]:
    """Which door a change we did not apply ourselves came through (see module docstring)."""
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
