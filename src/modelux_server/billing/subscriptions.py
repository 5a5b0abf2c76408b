"""Self-serve subscription actions: Checkout, the customer portal, change-plan.

The management API, the dashboard and MCP all call these three functions with
their `Principal`; `principal.source` ("api", "dashboard", "mcp") is what the
plan-change record says. Each raises the contract's errors and never commits.

The processor is called while the organization's row is locked, so a webhook
about the same organization waits for our transaction and then finds the
change already applied (and records nothing twice).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.auth.principal import Principal
from modelux_server.billing import service
from modelux_server.billing.manual import not_configured
from modelux_server.billing.plan_changes import record_plan_change
from modelux_server.billing.processor import BillingProcessor, BillingProcessorError
from modelux_server.billing.stripe.apply import ENDED, apply_subscription
from modelux_server.billing.stripe.webhooks import complete_checkout
from modelux_server.billing.summary import BillingSummary, billing_summary
from modelux_server.errors import Conflict, ServiceUnavailable, ValidationFailed
from modelux_server.models import CheckoutSession, Membership, PlanState, User
from modelux_server.plans.catalog import INTERVALS, Plan
from modelux_server.services import Services

log = logging.getLogger("modelux.billing")

MANAGE_ROLE = "admin"  # owners and admins; members only read billing


@dataclass(frozen=True)
class CheckoutStarted:
    """A Stripe Checkout Session: send the customer to `url`."""

    url: str
    id: str


@dataclass(frozen=True)
class PortalOpened:
    """A Stripe customer-portal session: send the customer to `url`."""

    url: str


def stripe_processor(rt: Services) -> BillingProcessor:
    """The billing processor when it is Stripe; manual billing answers "not configured"."""
    billing = rt.billing
    if billing.mode != "stripe":
        raise not_configured()
    return billing


async def start_checkout(
    session: AsyncSession, rt: Services, principal: Principal, *, plan: str, interval: str
) -> CheckoutStarted:
    """A Stripe Checkout Session that subscribes the organization to `plan`."""
    principal.require(MANAGE_ROLE)
    billing = stripe_processor(rt)
    target = _self_serve_plan(rt, plan, interval)
    if not target.price_cents(interval):
        raise ValidationFailed(
            f"{target.name} is free and needs no checkout; use change-plan to move to it.",
            code="plan_needs_no_checkout",
            param="plan",
        )
    current = await service.org_plan(session, rt, principal.org_id, lock=True)
    state = current.state
    _refuse_custom(state)
    if state.stripe_subscription_id:
        raise Conflict(
            "This organization already has a subscription: change plans with "
            "POST /manage/v1/billing/change-plan, or manage payment in the portal.",
            code="subscription_exists",
        )
    price_id = await _price(billing, target.id, interval)
    billing_page = f"{rt.public_url}/settings/billing"
    try:
        checkout = await billing.create_checkout(
            org_id=principal.org_id,
            price_id=price_id,
            customer_id=state.stripe_customer_id,
            customer_email=None if state.stripe_customer_id else await _billing_email(session, state),
            success_url=f"{billing_page}?checkout=success&session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{billing_page}?checkout=cancel",
            metadata={"org_id": principal.org_id, "modelux_plan": target.id, "modelux_interval": interval},
        )
    except BillingProcessorError as exc:
        raise _unavailable(exc) from exc
    if checkout.url is None:
        # Stripe gives every open session a URL; without one the customer has nowhere to pay
        raise _unavailable(BillingProcessorError(f"checkout session {checkout.id} has no URL"))
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

    Stripe is read before the organization is locked, so a slow Stripe holds
    no lock; the apply re-reads the subscription under the lock, as the
    webhook does. If that read fails, `BillingProcessorError` propagates so
    the caller's transaction rolls back whatever was half applied.
    """
    if rt.billing.mode != "stripe" or not checkout_session_id:
        return False
    ours = await session.get(CheckoutSession, checkout_session_id)
    if ours is None or ours.org_id != principal.org_id:
        return False
    billing = rt.billing
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
    )
    return org_id == principal.org_id


async def open_portal(
    session: AsyncSession, rt: Services, principal: Principal, *, return_url: str | None
) -> PortalOpened:
    """A Stripe customer-portal session (payment method, billing email, tax IDs)."""
    principal.require(MANAGE_ROLE)
    billing = stripe_processor(rt)
    state = (await service.org_plan(session, rt, principal.org_id)).state
    if not state.stripe_customer_id:
        raise Conflict(
            "This organization has no Stripe customer yet: start a subscription with "
            "POST /manage/v1/billing/checkout first.",
            code="no_billing_account",
        )
    target = return_url or f"{rt.public_url}/settings/billing"
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationFailed("return_url must be an absolute http(s) URL", param="return_url")
    try:
        url = await billing.create_portal(customer_id=state.stripe_customer_id, return_url=target)
    except BillingProcessorError as exc:
        raise _unavailable(exc) from exc
    return PortalOpened(url=url)


async def change_plan(
    session: AsyncSession, rt: Services, principal: Principal, *, plan: str, interval: str
) -> BillingSummary:
    """Move between self-serve plans and intervals now, prorated by Stripe.

    A paid plan updates the subscription's price (proration invoiced now);
    the free plan cancels the subscription. Returns the new billing summary.
    """
    principal.require(MANAGE_ROLE)
    billing = stripe_processor(rt)
    target = _self_serve_plan(rt, plan, interval)
    current = await service.org_plan(session, rt, principal.org_id, lock=True)
    state = current.state
    _refuse_custom(state)
    free = not target.price_cents(interval)
    if free:
        interval = "monthly"  # Free has no interval worth keeping
    if state.stripe_subscription_id is None:
        if not free:
            raise Conflict(
                f"This organization has no subscription yet: subscribe to {target.name} with "
                "POST /manage/v1/billing/checkout.",
                code="checkout_required",
            )
        # already without a subscription: at most a bookkeeping move to Free
        await record_plan_change(
            session,
            rt,
            state,
            plan_id=target.id,
            interval=interval,
            source=principal.source,
            actor=principal.actor,
        )
        return await billing_summary(session, rt, principal.org_id)
    if (state.plan_id, state.interval) == (target.id, interval):
        return await billing_summary(session, rt, principal.org_id)
    price_id = None if free else await _price(billing, target.id, interval)
    try:
        live = await billing.retrieve_subscription(state.stripe_subscription_id)
        if price_id is None and live.status in ENDED:
            # Already over in Stripe (an earlier attempt whose answer we lost, or
            # a webhook not yet here): apply that rather than cancel again, since
            # DELETE takes no idempotency key and Stripe refuses a second cancel.
            await apply_subscription(session, rt, state, live, source=principal.source, actor=principal.actor)
            return await billing_summary(session, rt, principal.org_id)
        # Stable for one attempt: a retry after a failure on our side replays
        # Stripe's first answer instead of acting twice. The latest invoice is
        # in it so that after a declined card a new attempt is a new request.
        key = f"change-plan:{live.id}:{state.revision}:{live.latest_invoice_id}:{target.id}:{interval}"
        if price_id is None:
            sub = await billing.cancel(live.id, idempotency_key=key)
        else:
            sub = await billing.change_price(live, price_id, idempotency_key=key)
    except BillingProcessorError as exc:
        if exc.declined:
            raise _declined() from exc
        raise _unavailable(exc) from exc
    if sub.has_pending_update:
        # pending_if_incomplete: Stripe kept the old price because the prorated
        # invoice was not paid; nothing changed on our side either
        raise _declined()
    await apply_subscription(session, rt, state, sub, source=principal.source, actor=principal.actor)
    return await billing_summary(session, rt, principal.org_id)


def _self_serve_plan(rt: Services, plan_id: str, interval: str) -> Plan:
    if interval not in INTERVALS:
        raise ValidationFailed("interval must be 'monthly' or 'annual'", param="interval")
    plan = rt.catalog.get(plan_id)
    if plan is None:
        known = ", ".join(p.id for p in rt.catalog.self_serve())
        raise ValidationFailed(
            f"unknown plan '{plan_id}' (self-serve plans: {known})", code="unknown_plan", param="plan"
        )
    if not plan.self_serve:
        raise ValidationFailed(
            f"{plan.name} is not self-serve: it is made per customer. Contact sales to scope one.",
            code="plan_not_self_serve",
            param="plan",
        )
    return plan


def _refuse_custom(state: PlanState) -> None:
    if state.custom_plan_id is not None:
        raise Conflict(
            "This organization is on a custom Enterprise plan, managed with your account team; "
            "contact sales to change it.",
            code="custom_plan",
        )


async def _price(billing: BillingProcessor, plan_id: str, interval: str) -> str:
    try:
        return await billing.price_id(plan_id, interval)
    except BillingProcessorError as exc:
        if exc.not_found:
            raise Conflict(str(exc), code="stripe_catalog_not_synced") from exc
        raise _unavailable(exc) from exc


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


def _declined() -> Conflict:
    return Conflict(
        "The card on file was declined, so the plan did not change. Update the payment method "
        "in the billing portal (POST /manage/v1/billing/portal) and try again.",
        code="payment_failed",
    )


def _unavailable(exc: BillingProcessorError) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"The payment processor could not complete this: {exc}", code="billing_unavailable"
    )
