"""Self-serve plan changes: change-plan and its preview, and the invoice list.

Checkout and the portal are billing/checkout.py; both use the helpers at the
end of this module. The management API, the dashboard and MCP all call these
functions with their `Principal`; `principal.source` ("api", "dashboard",
"mcp") is what the plan-change record says. Each raises the contract's errors.

Stripe is never called while the organization is locked (stripe/locking.py):
the state is read, the transaction ended, Stripe asked, and the answer applied
under the lock only if nothing moved meanwhile. A plan change marks the state
first (`pending_change`), so a webhook that lands before Stripe's answer
credits the change to whoever asked.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta

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
    InvoiceView,
    SubscriptionView,
)
from modelux_server.billing.stripe.apply import (
    ENDED,
    PENDING_CHANGE_TTL,
    PENDING_UPDATE_TTL,
    apply_subscription,
    touch,
)
from modelux_server.billing.stripe.locking import read_then_apply, release
from modelux_server.billing.stripe.refunds import pay_due, unused_time_plan
from modelux_server.billing.summary import BillingSummary, billing_summary
from modelux_server.errors import (
    Conflict,
    PaymentActionRequired,
    ServiceUnavailable,
    ValidationFailed,
)
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.models import PlanState
from modelux_server.plans.catalog import INTERVALS, Plan
from modelux_server.services import Services

log = logging.getLogger("modelux.billing")

STRIPE_MAX_PAGE = 100  # Stripe's largest list page
# a cursor is an invoice id we handed out; anything else is refused before Stripe sees it
INVOICE_ID = re.compile(r"in_[A-Za-z0-9]{1,250}")

MANAGE_ROLE = "admin"  # owners and admins; members only read billing


def stripe_processor(rt: Services) -> BillingProcessor:
    """The billing processor when it is Stripe; manual billing answers "not configured"."""
    billing = rt.billing
    if billing.mode != "stripe":
        raise not_configured()
    return billing


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
    target = self_serve_plan(rt, plan, interval)
    state = (await service.org_plan(session, rt, principal.org_id)).state
    refuse_custom(state)
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
            refund = await unused_time_plan(billing, live, rt.clock.now())
            lines = [(f"Refund of the unused time on {current_name}", -refund.total)] if refund.total else []
            if refund.credit:  # the part the customer's balance paid goes back to it
                lines.append((f"Unused time on {current_name} paid from your balance", -refund.credit))
            return PlanChangePreview(
                target, interval, refund.currency, lines, 0, refund.credit, refund.total, dormant
            )
        _refuse_past_due(live)
        seen: ChangePreview = await billing.preview_change(
            live, await catalog_price(billing, target.id, interval)
        )
    except BillingProcessorError as exc:
        raise unavailable(exc) from exc
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
    target = self_serve_plan(rt, plan, interval)
    state = (await service.org_plan(session, rt, principal.org_id)).state
    refuse_custom(state)
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
        price_id = None if free else await catalog_price(billing, target.id, interval)
        live = await billing.retrieve_subscription(subscription_id)
    except BillingProcessorError as exc:
        raise unavailable(exc) from exc
    if price_id is None and live.status in ENDED:
        # Already over in Stripe (an earlier attempt whose answer we lost, or a
        # webhook not yet here): apply that rather than cancel again, since
        # DELETE takes no idempotency key and Stripe refuses a second cancel.
        await _apply_fresh(session, rt, billing, principal, live.id)
        return await _after_change(session, rt, billing, principal.org_id)
    if price_id is not None:
        _refuse_past_due(live)
    # The SDK retries this request with the same key, so an answer lost on the
    # network is replayed rather than acted on twice; a new attempt after a
    # failure is a new request (the revision in the key has moved since). The
    # latest invoice is in it so that a new card after a decline is too.
    key = f"change-plan:{live.id}:{revision}:{live.latest_invoice_id}:{target.id}:{interval}"
    await _mark_pending(session, rt, principal, live.id, price_id, PENDING_CHANGE_TTL)
    finished = False
    try:
        if price_id is None:
            await billing.cancel(live.id, idempotency_key=key)
        else:
            sub = await billing.change_price(live, price_id, idempotency_key=key)
            if sub.has_pending_update:
                # pending_if_incomplete: Stripe kept the old price because the
                # prorated invoice is not paid; nothing changes on our side either
                refused = await _payment_refused(billing, sub)
                if isinstance(refused, PaymentActionRequired):
                    # paid once the customer confirms, maybe hours from now: the
                    # change stays credited to this principal until Stripe gives up
                    await _mark_pending(session, rt, principal, live.id, price_id, PENDING_UPDATE_TTL)
                    finished = True
                raise refused
        # the end (and the refund it makes due) or the new price, as Stripe now has it
        await _apply_fresh(session, rt, billing, principal, live.id)
        finished = True
    except BillingProcessorError as exc:
        if exc.declined:
            raise _declined(None) from exc
        raise unavailable(exc) from exc
    finally:
        if not finished:
            await _clear_pending(session, rt, principal.org_id)
    return await _after_change(session, rt, billing, principal.org_id)


async def _after_change(
    session: AsyncSession, rt: Services, billing: BillingProcessor, org_id: str
) -> BillingSummary:
    """Commit the change, then pay a refund it made due; the summary to answer with.

    The change stands whatever the refund does: a refund Stripe refuses now
    stays due (or failed, logged as a billing incident) for reconcile.
    """
    await release(session)
    try:
        await pay_due(rt, billing, org_id)
    except BillingProcessorError as exc:
        log.warning("refund for %s left due: %s", org_id, exc)
    return await billing_summary(session, rt, org_id)


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
        raise unavailable(exc) from exc


async def _mark_pending(
    session: AsyncSession,
    rt: Services,
    principal: Principal,
    sub_id: str,
    price_id: str | None,
    ttl: timedelta,
) -> None:
    state = (await service.org_plan(session, rt, principal.org_id, lock=True)).state
    state.pending_change = {
        "subscription_id": sub_id,
        "price_id": price_id,
        "source": principal.source,
        "actor": principal.actor,
        "until": (rt.clock.now() + ttl).isoformat(),
    }
    touch(state, rt)
    await release(session)


async def _clear_pending(session: AsyncSession, rt: Services, org_id: str) -> None:
    """After a failure: drop whatever the failed step left unwritten, then the mark."""
    await session.rollback()
    state = (await service.org_plan(session, rt, org_id, lock=True)).state
    if state.pending_change is not None:
        state.pending_change = None
        touch(state, rt)
    await release(session)


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
        if page.cursor is not None and (
            not INVOICE_ID.fullmatch(page.cursor)
            or (await billing.retrieve_invoice(page.cursor)).customer_id != customer_id
        ):
            raise _foreign_cursor()
        found = await billing.list_invoices(
            customer_id=customer_id, limit=min(page.limit, STRIPE_MAX_PAGE), starting_after=page.cursor
        )
    except BillingProcessorError as exc:
        if exc.not_found:
            raise _foreign_cursor() from exc
        raise unavailable(exc) from exc
    return Page(found.data, found.data[-1].id if found.has_more and found.data else None)


def _foreign_cursor() -> ValidationFailed:
    return ValidationFailed(
        "cursor is not one of this organization's invoices.", code="invalid_cursor", param="cursor"
    )


def self_serve_plan(rt: Services, plan_id: str, interval: str) -> Plan:
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


def refuse_custom(state: PlanState) -> None:
    if state.custom_plan_id is not None:
        raise Conflict(
            "This organization is on a custom Enterprise plan, managed with your account team; "
            "contact sales to change it.",
            code="custom_plan",
        )


async def catalog_price(billing: BillingProcessor, plan_id: str, interval: str) -> str:
    try:
        return await billing.price_id(plan_id, interval)
    except BillingProcessorError as exc:
        if exc.not_found:
            raise Conflict(str(exc), code="stripe_catalog_not_synced") from exc
        raise unavailable(exc) from exc


def _declined(invoice_url: str | None) -> Conflict:
    extra = {"hosted_invoice_url": invoice_url} if invoice_url else {}
    return Conflict(
        "The card on file was declined, so the plan did not change. Update the payment method "
        "in the billing portal (POST /manage/v1/billing/portal) and try again.",
        code="payment_failed",
        **extra,
    )


def subscription_exists() -> Conflict:
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


def billing_page(rt: Services) -> str:
    return f"{rt.public_url}/settings/billing"


def unavailable(exc: BillingProcessorError) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"The payment processor could not complete this: {exc}", code="billing_unavailable"
    )
