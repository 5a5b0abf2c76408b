"""Self-serve subscription actions: Checkout, the customer portal, change-plan.

The management API, the dashboard and MCP all call these functions with
their `Principal`; `principal.source` ("api", "dashboard", "mcp") is what the
plan-change record says. Each raises the contract's errors.

Stripe is never called while the organization is locked (stripe/locking.py):
the state is read, the transaction ended, Stripe asked, and the answer applied
under the lock only if nothing moved meanwhile. A plan change marks the state
first (`pending_change`), so a webhook that lands before Stripe's answer
credits the change to whoever asked.
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
from modelux_server.billing.processor import (
    NEEDS_ACTION,
    BillingProcessor,
    BillingProcessorError,
    ChangePreview,
    CheckoutView,
    InvoiceView,
    SubscriptionView,
)
from modelux_server.billing.stripe.apply import ENDED, apply_subscription, touch
from modelux_server.billing.stripe.locking import read_then_apply, release
from modelux_server.billing.stripe.refunds import (
    RefundPlan,
    refund_plan,
    refund_unused_time,
    subscription_invoices,
)
from modelux_server.billing.stripe.webhooks import complete_checkout
from modelux_server.billing.summary import BillingSummary, billing_summary
from modelux_server.errors import (
    Conflict,
    PaymentActionRequired,
    ServiceUnavailable,
    ValidationFailed,
)
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.models import CheckoutSession, Membership, PlanState, User
from modelux_server.plans.catalog import INTERVALS, Plan
from modelux_server.services import Services

log = logging.getLogger("modelux.billing")

STRIPE_MAX_PAGE = 100  # Stripe's largest list page

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
    """A Stripe Checkout Session that subscribes the organization to `plan`.

    At most one session is open per organization: an open one for the same
    plan and interval is handed out again (a second tab, a retry), any other
    open one is expired in Stripe first, so two sessions cannot both be paid.
    A session found already paid is applied, and the answer is 409.
    """
    principal.require(MANAGE_ROLE)
    billing = stripe_processor(rt)
    target = _self_serve_plan(rt, plan, interval)
    if not target.price_cents(interval):
        raise ValidationFailed(
            f"{target.name} is free and needs no checkout; use change-plan to move to it.",
            code="plan_needs_no_checkout",
            param="plan",
        )
    state = (await service.org_plan(session, rt, principal.org_id)).state
    _refuse_custom(state)
    if state.stripe_subscription_id:
        raise _subscription_exists()
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
        price_id = await _price(billing, target.id, interval)
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
            await _remember_customer(session, rt, principal.org_id, customer_id)
        reusable, closed = await _settle_open_checkouts(billing, earlier, target.id, interval)
        checkout = reusable
        if checkout is None and not any(c.status == "complete" for c in closed):
            checkout = await billing.create_checkout(
                org_id=principal.org_id,
                price_id=price_id,
                customer_id=customer_id,
                customer_email=None,
                success_url=f"{_billing_page(rt)}?checkout=success&session_id={{CHECKOUT_SESSION_ID}}",
                cancel_url=f"{_billing_page(rt)}?checkout=cancel",
                metadata={
                    "org_id": principal.org_id,
                    "modelux_plan": target.id,
                    "modelux_interval": interval,
                },
            )
    except BillingProcessorError as exc:
        raise _unavailable(exc) from exc
    for seen in closed:
        ours = await session.get(CheckoutSession, seen.id)
        if ours is not None and ours.status == "open":
            ours.status = seen.status
            if seen.status == "complete":
                ours.completed_at = rt.clock.now()
    paid = next((c for c in closed if c.status == "complete" and c.subscription_id), None)
    if paid is not None:
        # paid in another tab, its webhook not here yet: follow it now
        await complete_checkout(
            session,
            rt,
            billing,
            checkout_id=paid.id,
            org_hints=[principal.org_id],
            customer_id=paid.customer_id,
            subscription_id=paid.subscription_id,
            extras=[],
        )
        await release(session)  # kept, though the answer is an error
        raise _subscription_exists()
    if checkout is None or checkout.url is None:
        # Stripe gives every open session a URL; without one the customer has nowhere to pay
        raise _unavailable(BillingProcessorError("the checkout session has no URL"))
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


async def _remember_customer(session: AsyncSession, rt: Services, org_id: str, customer_id: str) -> None:
    state = (await service.org_plan(session, rt, org_id, lock=True)).state
    if state.stripe_customer_id is None:
        state.stripe_customer_id = customer_id
        touch(state, rt)
    await release(session)


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
        extras=[],  # a second subscription is settled by its webhook (or reconcile)
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
    target = return_url or _billing_page(rt)
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationFailed("return_url must be an absolute http(s) URL", param="return_url")
    customer_id = state.stripe_customer_id
    await release(session)
    try:
        url = await billing.create_portal(customer_id=customer_id, return_url=target)
    except BillingProcessorError as exc:
        raise _unavailable(exc) from exc
    return PortalOpened(url=url)


@dataclass(frozen=True)
class PlanChangePreview:
    """What change-plan would do now, before anything is charged."""

    plan: Plan
    interval: str
    currency: str
    lines: list[tuple[str, int]]  # (description, cents) of the invoice Stripe would create now
    amount_due: int  # charged to the card on file now
    credit: int  # left on the customer's balance for later invoices
    refund: int  # back to the card (leaving for the free plan)
    dormant: list[str]  # what the new plan switches off, by name


async def preview_change(
    session: AsyncSession, rt: Services, principal: Principal, *, plan: str, interval: str
) -> PlanChangePreview:
    """The charge (or refund) change-plan would make, from Stripe's invoice preview."""
    principal.require(MANAGE_ROLE)
    billing = stripe_processor(rt)
    target = _self_serve_plan(rt, plan, interval)
    state = (await service.org_plan(session, rt, principal.org_id)).state
    _refuse_custom(state)
    free = not target.price_cents(interval)
    interval = "monthly" if free else interval
    dormant = await _switched_off(session, rt, principal.org_id, target)
    if state.stripe_subscription_id is None:
        if not free:
            raise _checkout_required(target)
        return PlanChangePreview(target, interval, "usd", [], 0, 0, 0, dormant)
    subscription_id = state.stripe_subscription_id
    current_name = (await service.entitlements(session, rt, principal.org_id)).plan.name
    await release(session)
    try:
        live = await billing.retrieve_subscription(subscription_id)
        if free:
            refund = await _refund_for_leaving(billing, live, rt)
            lines = [(f"Refund of the unused time on {current_name}", -refund.total)] if refund.total else []
            return PlanChangePreview(target, interval, refund.currency, lines, 0, 0, refund.total, dormant)
        _refuse_past_due(live)
        seen: ChangePreview = await billing.preview_change(live, await _price(billing, target.id, interval))
    except BillingProcessorError as exc:
        raise _unavailable(exc) from exc
    return PlanChangePreview(
        plan=target,
        interval=interval,
        currency=seen.currency,
        lines=[(line.description, line.amount) for line in seen.lines],
        amount_due=seen.amount_due,
        credit=max(0, -seen.total),
        refund=0,
        dormant=dormant,
    )


async def change_plan(
    session: AsyncSession, rt: Services, principal: Principal, *, plan: str, interval: str
) -> BillingSummary:
    """Move between self-serve plans and intervals now, prorated by Stripe.

    A paid plan updates the subscription's price (proration invoiced now; a
    card that needs 3-D Secure answers 402 with the invoice's payment page);
    the free plan cancels the subscription and refunds the unused time
    (stripe/refunds.py). Returns the new billing summary.
    """
    principal.require(MANAGE_ROLE)
    billing = stripe_processor(rt)
    target = _self_serve_plan(rt, plan, interval)
    state = (await service.org_plan(session, rt, principal.org_id)).state
    _refuse_custom(state)
    free = not target.price_cents(interval)
    if free:
        interval = "monthly"  # Free has no interval worth keeping
    if state.stripe_subscription_id is None:
        if not free:
            raise _checkout_required(target)
        # already without a subscription: at most a bookkeeping move to Free
        state = (await service.org_plan(session, rt, principal.org_id, lock=True)).state
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
    subscription_id, revision = state.stripe_subscription_id, state.revision
    await release(session)
    try:
        price_id = None if free else await _price(billing, target.id, interval)
        live = await billing.retrieve_subscription(subscription_id)
    except BillingProcessorError as exc:
        raise _unavailable(exc) from exc
    if price_id is None and live.status in ENDED:
        # Already over in Stripe (an earlier attempt whose answer we lost, or a
        # webhook not yet here): apply that rather than cancel again, since
        # DELETE takes no idempotency key and Stripe refuses a second cancel.
        await refund_unused_time(rt, billing, principal.org_id, live)
        await _apply_fresh(session, rt, billing, principal, live.id)
        return await billing_summary(session, rt, principal.org_id)
    if price_id is not None:
        _refuse_past_due(live)
    # Stable for one attempt: a retry after a failure on our side replays
    # Stripe's first answer instead of acting twice. The latest invoice is in
    # it so that after a declined card a new attempt is a new request.
    key = f"change-plan:{live.id}:{revision}:{live.latest_invoice_id}:{target.id}:{interval}"
    await _mark_pending(session, rt, principal, live.id, price_id)
    try:
        if price_id is None:
            ended = await billing.cancel(live.id, idempotency_key=key)
            await refund_unused_time(rt, billing, principal.org_id, ended)
        else:
            sub = await billing.change_price(live, price_id, idempotency_key=key)
            if sub.has_pending_update:
                # pending_if_incomplete: Stripe kept the old price because the
                # prorated invoice is not paid; nothing changes on our side either
                raise await _payment_refused(billing, sub)
    except BillingProcessorError as exc:
        await _clear_pending(session, rt, principal.org_id)
        if exc.declined:
            raise _declined(None) from exc
        raise _unavailable(exc) from exc
    except (PaymentActionRequired, Conflict):
        await _clear_pending(session, rt, principal.org_id)
        raise
    await _apply_fresh(session, rt, billing, principal, live.id)
    return await billing_summary(session, rt, principal.org_id)


async def _apply_fresh(
    session: AsyncSession, rt: Services, billing: BillingProcessor, principal: Principal, sub_id: str
) -> None:
    """Read the subscription back from Stripe and apply it as the principal's change."""

    async def read(state: PlanState) -> SubscriptionView:
        return await billing.retrieve_subscription(sub_id)

    async def apply(state: PlanState, sub: SubscriptionView) -> None:
        await apply_subscription(session, rt, state, sub, source=principal.source, actor=principal.actor)
        if state.pending_change is not None:
            state.pending_change = None
            touch(state, rt)

    try:
        await read_then_apply(session, principal.org_id, read, apply)
    except BillingProcessorError as exc:
        raise _unavailable(exc) from exc


async def _mark_pending(
    session: AsyncSession, rt: Services, principal: Principal, sub_id: str, price_id: str | None
) -> None:
    state = (await service.org_plan(session, rt, principal.org_id, lock=True)).state
    state.pending_change = {
        "subscription_id": sub_id,
        "price_id": price_id,
        "source": principal.source,
        "actor": principal.actor,
        "at": rt.clock.now().isoformat(),
    }
    touch(state, rt)
    await release(session)


async def _clear_pending(session: AsyncSession, rt: Services, org_id: str) -> None:
    await session.rollback()
    state = (await service.org_plan(session, rt, org_id, lock=True)).state
    if state.pending_change is not None:
        state.pending_change = None
        touch(state, rt)
    await release(session)


async def _refund_for_leaving(billing: BillingProcessor, live: SubscriptionView, rt: Services) -> RefundPlan:
    return refund_plan(live, await subscription_invoices(billing, live.id), rt.clock.now())


async def _payment_refused(billing: BillingProcessor, sub: SubscriptionView) -> Exception:
    """The error for an upgrade whose invoice did not get paid: authenticate, or a new card."""
    invoice_id = sub.latest_invoice_id
    if invoice_id is None:
        return _declined(None)
    problem = await billing.payment_problem(invoice_id)
    invoice = await billing.retrieve_invoice(invoice_id)
    if problem == NEEDS_ACTION and invoice.hosted_invoice_url:
        return PaymentActionRequired(
            "Your bank asks you to confirm this payment (3-D Secure). Open hosted_invoice_url to confirm "
            "it; the new plan starts as soon as it is paid. Until then nothing changes.",
            hosted_invoice_url=invoice.hosted_invoice_url,
            invoice=invoice.id,
        )
    return _declined(invoice.hosted_invoice_url)


def _refuse_past_due(live: SubscriptionView) -> None:
    """No plan change on top of an unpaid renewal: its proration would credit unpaid time."""
    if live.status == "past_due":
        raise Conflict(
            "The last renewal is not paid yet, so the plan cannot change: update the payment method "
            "in the billing portal (POST /manage/v1/billing/portal) and pay the open invoice first, "
            "or move to the free plan.",
            code="payment_past_due",
        )


async def _switched_off(session: AsyncSession, rt: Services, org_id: str, target: Plan) -> list[str]:
    current = await service.entitlements(session, rt, org_id)
    return sorted(current.plan.features - target.features)


async def list_invoices(
    session: AsyncSession, rt: Services, principal: Principal, page: PageRequest
) -> Page[InvoiceView]:
    """The organization's Stripe invoices, newest first (none without a Stripe customer).

    Members read them too, like the rest of the billing page. The cursor is
    the last invoice id of the previous page, checked to be this customer's.
    """
    if rt.billing.mode != "stripe":
        return Page([], None)
    state = (await service.org_plan(session, rt, principal.org_id)).state
    if state.stripe_customer_id is None:
        return Page([], None)
    customer_id = state.stripe_customer_id
    await release(session)
    billing = rt.billing
    try:
        if (
            page.cursor is not None
            and (await billing.retrieve_invoice(page.cursor)).customer_id != customer_id
        ):
            raise _foreign_cursor()
        found = await billing.list_invoices(
            customer_id=customer_id, limit=min(page.limit, STRIPE_MAX_PAGE), starting_after=page.cursor
        )
    except BillingProcessorError as exc:
        if exc.not_found:
            raise _foreign_cursor() from exc
        raise _unavailable(exc) from exc
    return Page(found.data, found.data[-1].id if found.has_more and found.data else None)


def _foreign_cursor() -> ValidationFailed:
    return ValidationFailed(
        "cursor is not one of this organization's invoices.", code="invalid_cursor", param="cursor"
    )


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


def _declined(invoice_url: str | None) -> Conflict:
    extra = {"hosted_invoice_url": invoice_url} if invoice_url else {}
    return Conflict(
        "The card on file was declined, so the plan did not change. Update the payment method "
        "in the billing portal (POST /manage/v1/billing/portal) and try again.",
        code="payment_failed",
        **extra,
    )


def _subscription_exists() -> Conflict:
    return Conflict(
        "This organization already has a subscription: change plans with "
        "POST /manage/v1/billing/change-plan, or manage payment in the portal.",
        code="subscription_exists",
    )


def _checkout_required(target: Plan) -> Conflict:
    return Conflict(
        f"This organization has no subscription yet: subscribe to {target.name} with "
        "POST /manage/v1/billing/checkout.",
        code="checkout_required",
    )


def _billing_page(rt: Services) -> str:
    return f"{rt.public_url}/settings/billing"


def _unavailable(exc: BillingProcessorError) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"The payment processor could not complete this: {exc}", code="billing_unavailable"
    )
