"""Invoice payment terms through Stripe: a per-customer price and a subscription that
sends invoices, kept in line with each Enterprise plan version.

An Enterprise plan version whose terms say `payment.method = "invoice"` is billed by
one Stripe subscription with `collection_method=send_invoice`: Stripe finalizes each
invoice, emails it to the billing contact (the customer's email) and expects payment
within `net_days` (`days_until_due`). Its price is made for this customer alone: no
lookup key, and metadata `modelux_enterprise_plan` / `modelux_org`, so the self-serve
catalog (which finds prices by lookup key) never sees it, and `apply.plan_of_price`
never maps it to a catalog plan.

Saving a version (`on_saved`):

* manual billing, or nothing Stripe bills from changed (price, interval, currency,
  net days, PO number, billing contact): nothing is asked of Stripe;
* otherwise the version is committed first and Stripe asked holding no lock
  (billing/stripe/locking.py), then the ids are stored on the version under the
  organization's lock. A Stripe that fails leaves the version saved with no
  `stripe_price_id`; the hourly job (invoice_sync.run) finishes the work.
* A change of price, interval or net days updates the existing subscription in place
  (its item moves to a new price, with Stripe's default `create_prorations`) rather
  than canceling it and starting another: one subscription keeps one invoice history
  and the contract's billing day, the difference for the rest of the period lands on
  the next invoice, and an interval change restarts the period at once with the
  unused part credited, as Stripe does for any interval change. A new subscription is
  made only when the currency changes, which Stripe does not allow on a subscription.
* Invoice terms removed (card, or no price): the subscription is canceled.

Every create carries an idempotency key named after the plan version, so a retry
(the SDK's, or the job's) replays Stripe's first answer instead of billing twice.
What Stripe then says about these subscriptions and their invoices comes back through
enterprise/invoice_sync.py; what an overdue invoice leads to is enterprise/overdue.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing import repository
from modelux_server.billing.processor import (
    BillingProcessor,
    BillingProcessorError,
    InvoiceBilling,
    PriceRef,
    SubscriptionView,
)
from modelux_server.billing.stripe.apply import ENDED, ENTERPRISE_PRICE_MARK, touch
from modelux_server.billing.stripe.locking import release
from modelux_server.enterprise.terms import PRICE_INTERVALS, Terms
from modelux_server.models import CustomPlan, PlanState
from modelux_server.services import Services

log = logging.getLogger("modelux.enterprise")

PRODUCT_ID = "modelux_enterprise_invoiced"
PLAN_MARK = ENTERPRISE_PRICE_MARK  # metadata: the plan version a price or subscription is for
ORG_MARK = "modelux_org"
PO_FIELD = "PO number"  # the invoice's custom field (Stripe: name up to 40 characters)


@dataclass(frozen=True)
class Billing:
    """What Stripe bills from, in one plan version's terms (invoice terms only)."""

    amount_cents: int
    currency: str
    interval: str  # monthly | quarterly | annual
    net_days: int
    po_number: str | None
    contact_email: str
    contact_name: str | None

    @classmethod
    def of(cls, plan: CustomPlan | None) -> Billing | None:
        if plan is None:
            return None
        terms = Terms.load(plan.terms)
        price, payment, contact = terms.price, terms.payment, terms.billing_contact
        if not terms.invoiced or price is None or payment is None or contact is None:
            return None
        return cls(
            amount_cents=price.amount_cents,
            currency=price.currency,
            interval=price.interval,
            net_days=payment.net_days,
            po_number=payment.po_number,
            contact_email=contact.email,
            contact_name=contact.name,
        )

    @property
    def custom_fields(self) -> list[tuple[str, str]]:
        return [(PO_FIELD, self.po_number)] if self.po_number else []

    def billed_by(self, price: PriceRef) -> bool:
        """Whether `price` is one of ours that bills exactly this."""
        interval, count = PRICE_INTERVALS[self.interval]
        return (
            PLAN_MARK in price.metadata
            and price.unit_amount == self.amount_cents
            and price.currency == self.currency
            and price.recurring_interval == interval
            and price.recurring_interval_count == count
        )


def invoice_billing(rt: Services) -> InvoiceBilling | None:
    """The processor when it can bill by invoice (Stripe); None in manual billing mode."""
    if rt.settings.billing_mode != "stripe":
        return None
    billing = rt.billing
    return billing if isinstance(billing, InvoiceBilling) else None


async def on_saved(
    session: AsyncSession, rt: Services, state: PlanState, plan: CustomPlan, previous: CustomPlan | None
) -> None:
    """A plan version was saved: bring its Stripe subscription in line with its terms.

    Called by enterprise/plans.py with the organization locked and the version written
    but not committed. When Stripe has to be asked, the version is committed first
    (the caller's transaction continues afterwards, holding the lock again).
    """
    billing = invoice_billing(rt)
    if billing is None:
        return
    want = Billing.of(plan)
    if want is None and plan.stripe_subscription_id is None:
        plan.stripe_price_id = None
        return
    in_line = previous is not None and previous.stripe_price_id is not None
    if want is not None and in_line and plan.stripe_subscription_id and Billing.of(previous) == want:
        return  # nothing Stripe bills from changed: the carried price and subscription stay
    # no price until Stripe has answered: the job finds versions left like this
    plan.stripe_price_id = None
    try:
        await sync(session, rt, billing, state.org_id, plan.id)
    except BillingProcessorError as exc:
        log.warning(
            "Enterprise plan %s of %s is saved, but Stripe could not bill it yet (%s); "
            "the enterprise-invoices job retries within the hour",
            plan.id,
            state.org_id,
            exc,
        )
        await session.rollback()
        await repository.get_plan_state(session, state.org_id, lock=True)


async def on_ended(session: AsyncSession, rt: Services, state: PlanState, plan: CustomPlan) -> None:
    """The organization left its Enterprise plan: stop invoicing it.

    The move is committed before Stripe is asked. A cancel Stripe refuses is logged as
    a billing incident (the operator cancels the subscription in the Stripe Dashboard);
    the move stands either way.
    """
    billing = invoice_billing(rt)
    sub_id = plan.stripe_subscription_id
    if billing is None or sub_id is None:
        return
    await release(session)
    try:
        await end_subscription(billing, sub_id)
    except BillingProcessorError as exc:
        log.error(
            "billing incident: %s left its Enterprise plan but its invoice subscription %s "
            "could not be canceled (%s); cancel it in the Stripe Dashboard",
            state.org_id,
            sub_id,
            exc,
        )


async def sync(
    session: AsyncSession, rt: Services, billing: InvoiceBilling, org_id: str, plan_id: str
) -> None:
    """Make Stripe bill one plan version as its terms say, and store the ids on it.

    Commits what the session holds, asks Stripe holding no lock, then writes under the
    organization's lock (held when this returns). Safe to repeat: the creates are keyed
    by the plan version, and a subscription of ours that Stripe has but we lost the id
    of is found among the customer's and reused.
    """
    state = await _state(session, org_id)
    plan = await session.get(CustomPlan, plan_id, populate_existing=True)
    if plan is None:
        return
    want = Billing.of(plan)
    customer_id, revision, sub_id = state.stripe_customer_id, state.revision, plan.stripe_subscription_id
    await release(session)
    price_id: str | None = None
    if want is None:
        if sub_id is not None:
            await end_subscription(billing, sub_id)
        sub_id = None
    else:
        if customer_id is None:
            customer_id = await billing.create_customer(
                org_id=org_id,
                email=want.contact_email,
                name=want.contact_name,
                idempotency_key=f"enterprise-customer:{org_id}:{revision}",
            )
        else:
            # invoices are emailed to the customer's address: the billing contact's
            await billing.update_customer(
                customer_id,
                email=want.contact_email,
                name=want.contact_name,
                idempotency_key=f"enterprise-contact:{plan_id}",
            )
        price_id, sub_id = await _subscribe(billing, org_id, plan_id, customer_id, want, sub_id)
    state = await _state(session, org_id, lock=True)
    if customer_id is not None and state.stripe_customer_id is None:
        state.stripe_customer_id = customer_id
        touch(state, rt)
    plan = await session.get(CustomPlan, plan_id, populate_existing=True)
    if plan is not None:
        plan.stripe_price_id, plan.stripe_subscription_id = price_id, sub_id


async def _subscribe(
    billing: InvoiceBilling, org_id: str, plan_id: str, customer_id: str, want: Billing, sub_id: str | None
) -> tuple[str, str]:
    """(price id, subscription id) billing `want`: the live subscription updated, else a new one."""
    live = await billing.retrieve_subscription(sub_id) if sub_id else None
    if live is None or live.status in ENDED:
        live = await _lost(billing, customer_id, org_id)
    if live is not None and live.price.currency not in (None, want.currency):
        # Stripe keeps a subscription in one currency: the new currency needs a new one
        await end_subscription(billing, live.id)
        live = None
    if live is not None and want.billed_by(live.price):
        price_id = live.price.id
    else:
        interval, count = PRICE_INTERVALS[want.interval]
        await billing.ensure_product(
            PRODUCT_ID, name="modelux Enterprise", metadata={"modelux": "enterprise"}
        )
        price_id = await billing.create_recurring_price(
            product_id=PRODUCT_ID,
            amount_cents=want.amount_cents,
            currency=want.currency,
            interval=interval,
            interval_count=count,
            metadata={PLAN_MARK: plan_id, ORG_MARK: org_id},
            nickname=f"Enterprise {org_id} ({want.interval})",
            idempotency_key=f"enterprise-price:{plan_id}",
        )
    metadata = {PLAN_MARK: plan_id, ORG_MARK: org_id}
    if live is None:
        sub = await billing.create_invoiced_subscription(
            customer_id=customer_id,
            price_id=price_id,
            days_until_due=want.net_days,
            metadata=metadata,
            custom_fields=want.custom_fields,
            idempotency_key=f"enterprise-subscription:{plan_id}",
        )
    else:
        sub = await billing.update_invoiced_subscription(
            live,
            price_id=price_id,
            days_until_due=want.net_days,
            metadata=metadata,
            custom_fields=want.custom_fields,
            idempotency_key=f"enterprise-update:{plan_id}:{live.id}",
        )
    return price_id, sub.id


async def _lost(billing: BillingProcessor, customer_id: str, org_id: str) -> SubscriptionView | None:
    """A live invoice subscription of this organization we hold no id of (an answer lost
    after Stripe made it): reused rather than doubled."""
    for sub in await billing.live_subscriptions(customer_id):
        if sub.metadata.get(ORG_MARK) == org_id and PLAN_MARK in sub.metadata and sub.status not in ENDED:
            return sub
    return None


async def end_subscription(billing: BillingProcessor, sub_id: str) -> None:
    """Cancel now; one that has ended already is what was wanted."""
    try:
        await billing.cancel(sub_id, idempotency_key=f"enterprise-cancel:{sub_id}")
    except BillingProcessorError:
        if (await billing.retrieve_subscription(sub_id)).status not in ENDED:
            raise


async def _state(session: AsyncSession, org_id: str, *, lock: bool = False) -> PlanState:
    if lock:
        state = await repository.get_plan_state(session, org_id, lock=True)
    else:
        state = await session.get(PlanState, org_id, populate_existing=True)
    assert state is not None, "an organization's plan state is never deleted"
    return state
