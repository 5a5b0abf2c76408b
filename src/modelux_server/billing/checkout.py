"""Starting a subscription: Stripe Checkout, the customer's return from it, and the portal.

At most one Checkout Session is open per organization, and all of them share
the organization's one Stripe customer (made before the first), so a second
subscription cannot start by accident; stripe/extras.py settles one that
still does. Stripe is called with no lock held (stripe/locking.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.auth.principal import Principal
from modelux_server.billing import service
from modelux_server.billing.processor import BillingProcessor, BillingProcessorError, CheckoutView
from modelux_server.billing.stripe.apply import touch
from modelux_server.billing.stripe.locking import release
from modelux_server.billing.stripe.webhooks import complete_checkout
from modelux_server.billing.subscriptions import (
    MANAGE_ROLE,
    billing_page,
    catalog_price,
    refuse_custom,
    self_serve_plan,
    stripe_processor,
    subscription_exists,
    unavailable,
)
from modelux_server.errors import Conflict, ValidationFailed
from modelux_server.models import CheckoutSession, Membership, PlanState, User
from modelux_server.services import Services

log = logging.getLogger("modelux.billing")


@dataclass(frozen=True)
class CheckoutStarted:
    """A Stripe Checkout Session: send the customer to `url`."""

    url: str
    id: str


@dataclass(frozen=True)
class PortalOpened:
    """A Stripe customer-portal session: send the customer to `url`."""

    url: str


async def start_checkout(
    session: AsyncSession, rt: Services, principal: Principal, *, plan: str, interval: str
) -> CheckoutStarted:
    """A Stripe Checkout Session that subscribes the organization to `plan`.

    At most one session is open per organization: an open one for the same
    plan and interval is handed out again (a second tab, a retry), any other
    open one is expired in Stripe first, so two sessions cannot both be paid.
    A session found already paid is applied, and the answer is 409.
    """
    principal.require(MANAGE_ROLE)
    billing = stripe_processor(rt)
    target = self_serve_plan(rt, plan, interval)
    if not target.price_cents(interval):
        raise ValidationFailed(
            f"{target.name} is free and needs no checkout; use change-plan to move to it.",
            code="plan_needs_no_checkout",
            param="plan",
        )
    state = (await service.org_plan(session, rt, principal.org_id)).state
    refuse_custom(state)
    if state.stripe_subscription_id:
        raise subscription_exists()
    customer_id, revision = state.stripe_customer_id, state.revision
    email = None if customer_id else await _billing_email(session, state)
    stmt = (
        select(CheckoutSession)
        .where(CheckoutSession.org_id == principal.org_id, CheckoutSession.status == "open")
        .order_by(CheckoutSession.created_at.desc())
    )
    earlier = [(c.id, c.plan_id, c.interval) for c in (await session.execute(stmt)).scalars()]
    await release(session)
    try:
        price_id = await catalog_price(billing, target.id, interval)
        if customer_id is None:
            # One customer per organization, made before any Checkout: sessions
            # opened side by side share it, so a second subscription, should
            # one slip through, is found among the customer's. The key makes
            # two concurrent first checkouts get the same customer; the
            # revision in it makes a new one after the old was deleted.
            customer_id = await billing.create_customer(
                org_id=principal.org_id,
                email=email,
                idempotency_key=f"customer:{principal.org_id}:{revision}",
            )
            customer_id = await _remember_customer(session, rt, principal.org_id, customer_id)
        reusable, closed = await _settle_open_checkouts(billing, earlier, target.id, interval)
        checkout = reusable
        if checkout is None and not any(c.status == "complete" for c in closed):
            checkout = await billing.create_checkout(
                org_id=principal.org_id,
                price_id=price_id,
                customer_id=customer_id,
                success_url=f"{billing_page(rt)}?checkout=success&session_id={{CHECKOUT_SESSION_ID}}",
                cancel_url=f"{billing_page(rt)}?checkout=cancel",
                metadata={
                    "org_id": principal.org_id,
                    "modelux_plan": target.id,
                    "modelux_interval": interval,
                },
            )
    except BillingProcessorError as exc:
        raise unavailable(exc) from exc
    for seen in closed:
        ours = await session.get(CheckoutSession, seen.id, populate_existing=True)
        if ours is not None and ours.status == "open":
            ours.status = seen.status
            if seen.status == "complete":
                ours.completed_at = rt.clock.now()
    paid = next((c for c in closed if c.status == "complete" and c.subscription_id), None)
    if paid is not None:
        # paid in another tab, its webhook not here yet: follow it now
        try:
            await complete_checkout(
                session,
                rt,
                billing,
                checkout_id=paid.id,
                org_hints=[principal.org_id],
                customer_id=paid.customer_id,
                subscription_id=paid.subscription_id,
                follow_ups=[],
            )
        except BillingProcessorError as exc:
            raise unavailable(exc) from exc
        await release(session)  # kept, though the answer is an error
        raise subscription_exists()
    if checkout is None or checkout.url is None:
        # Stripe gives every open session a URL; without one the customer has nowhere to pay
        raise unavailable(BillingProcessorError("the checkout session has no URL"))
    if reusable is None:
        session.add(
            CheckoutSession(
                id=checkout.id,
                org_id=principal.org_id,
                plan_id=target.id,
                interval=interval,
                source=principal.source,
                actor=principal.actor,
                status="open",
                completed_at=None,
                created_at=rt.clock.now(),
            )
        )
    return CheckoutStarted(url=checkout.url, id=checkout.id)


async def _remember_customer(session: AsyncSession, rt: Services, org_id: str, customer_id: str) -> str:
    """Link the new customer unless another request linked one meanwhile; the one linked."""
    state = (await service.org_plan(session, rt, org_id, lock=True)).state
    if state.stripe_customer_id is None:
        state.stripe_customer_id = customer_id
        touch(state, rt)
    linked = state.stripe_customer_id
    await release(session)
    return linked


async def _settle_open_checkouts(
    billing: BillingProcessor, earlier: list[tuple[str, str, str]], plan_id: str, interval: str
) -> tuple[CheckoutView | None, list[CheckoutView]]:
    """(an open session to hand out again, the sessions that are no longer open).

    The newest open session for the same plan and interval is reused; every
    other open one is expired in Stripe. One that turns out complete is
    returned among the closed ones, for the caller to apply.
    """
    reusable: CheckoutView | None = None
    closed: list[CheckoutView] = []
    for checkout_id, their_plan, their_interval in earlier:
        seen = await billing.retrieve_checkout(checkout_id)
        if seen.status == "open" and reusable is None and (their_plan, their_interval) == (plan_id, interval):
            reusable = seen
            continue
        if seen.status == "open":
            try:
                seen = await billing.expire_checkout(checkout_id)
            except BillingProcessorError:
                # paid or expired between our read and the expire: read what it became
                seen = await billing.retrieve_checkout(checkout_id)
                if seen.status == "open":
                    raise
        closed.append(seen)
    return reusable, closed


async def sync_checkout_return(
    session: AsyncSession, rt: Services, principal: Principal, checkout_session_id: str
) -> bool:
    """The customer is back from Checkout: apply what Stripe says it started.

    Stripe's `{CHECKOUT_SESSION_ID}` in the success URL names the session.
    The `checkout.session.completed` webhook may still be on its way; the
    session is read back from Stripe and applied through the webhook's own
    path, so the billing page shows the paid plan at once and the webhook,
    when it lands, finds nothing left to do. Only a session this organization
    started (our row, and Stripe's client_reference_id or metadata) counts;
    anything else, or a Stripe that cannot answer, leaves everything as it
    was and the page falls back to waiting for the webhook. True if applied.

    If the subscription cannot be read back, `BillingProcessorError`
    propagates so the caller's transaction rolls back whatever was half
    applied.
    """
    if rt.billing.mode != "stripe" or not checkout_session_id:
        return False
    ours = await session.get(CheckoutSession, checkout_session_id)
    if ours is None or ours.org_id != principal.org_id:
        return False
    billing = rt.billing
    await release(session)
    try:
        seen = await billing.retrieve_checkout(checkout_session_id)
    except BillingProcessorError as exc:
        log.info("checkout return %s: Stripe could not be read: %s", checkout_session_id, exc)
        return False
    claimed = {seen.client_reference_id, seen.metadata.get("org_id")} - {None}
    if claimed != {principal.org_id} or seen.status != "complete" or not seen.subscription_id:
        return False
    org_id = await complete_checkout(
        session,
        rt,
        billing,
        checkout_id=seen.id,
        org_hints=[principal.org_id],
        customer_id=seen.customer_id,
        subscription_id=seen.subscription_id,
        follow_ups=[],  # a second subscription is settled by its webhook (or reconcile)
    )
    return org_id == principal.org_id


async def open_portal(
    session: AsyncSession, rt: Services, principal: Principal, *, return_url: str | None
) -> PortalOpened:
    """A Stripe customer-portal session (payment method, billing email, tax IDs)."""
    principal.require(MANAGE_ROLE)
    billing = stripe_processor(rt)
    state = (await service.org_plan(session, rt, principal.org_id)).state
    if state.custom_plan_id is not None:
        # the portal could cancel the invoice subscription of a negotiated contract
        raise Conflict(
            "This organization's Enterprise plan and its invoices are managed by your account "
            "manager; invoices are paid from their own links.",
            code="custom_plan",
        )
    if not state.stripe_customer_id:
        raise Conflict(
            "This organization has no Stripe customer yet: start a subscription with "
            "POST /manage/v1/billing/checkout first.",
            code="no_billing_account",
        )
    target = return_url or billing_page(rt)
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationFailed("return_url must be an absolute http(s) URL", param="return_url")
    customer_id = state.stripe_customer_id
    await release(session)
    try:
        url = await billing.create_portal(customer_id=customer_id, return_url=target)
    except BillingProcessorError as exc:
        raise unavailable(exc) from exc
    return PortalOpened(url=url)


async def _billing_email(session: AsyncSession, state: PlanState) -> str | None:
    if state.billing_email:
        return state.billing_email
    stmt = (
        select(User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == state.org_id, Membership.role == "owner")
        .order_by(Membership.created_at)
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()
