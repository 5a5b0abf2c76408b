"""The billing processor port: what the rest of the code may ask of a payment processor.

Two implementations: `stripe.gateway.StripeBilling` (the only module that
imports the `stripe` SDK) and `manual.ManualBilling` (the embedded default,
with no processor). Everything crossing this boundary is a plain value object,
so services and tests never see SDK types, and SDK errors are converted to
`BillingProcessorError` at the boundary.

The provider never decides entitlements: it reports what the processor holds
(subscription status, price, period) and `billing.sync` maps that onto our plan
state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

# Our Stripe prices are named `modelux_<plan>_<interval>`; subscriptions map
# back to plans through this key (or the same facts in price metadata, which
# survives a lookup key being moved to a newer price).
LOOKUP_PREFIX = "modelux_"
STRIPE_INTERVALS = {"monthly": "month", "annual": "year"}


def lookup_key(plan_id: str, interval: str) -> str:
    return f"{LOOKUP_PREFIX}{plan_id}_{interval}"


class BillingProcessorError(Exception):
    """The payment processor refused or could not be reached.

    `declined` is set when the customer's card was the problem, which the
    caller reports differently from an outage.
    """

    def __init__(self, message: str, *, declined: bool = False, not_found: bool = False) -> None:
        super().__init__(message)
        self.declined = declined
        self.not_found = not_found


# What stopped an invoice's payment, as `payment_problem` reports it
NEEDS_ACTION = "requires_action"  # the bank wants the customer to authenticate (3-D Secure)
DECLINED = "declined"


class InvalidWebhook(Exception):
    """The webhook's signature or timestamp does not verify."""


class MalformedWebhook(InvalidWebhook):
    """Correctly signed, but not a well-formed event of its type: refused, nothing applied."""


@dataclass(frozen=True)
class PriceRef:
    """What a subscription item's price says about our catalog."""

    id: str
    lookup_key: str | None
    metadata: Mapping[str, str]
    recurring_interval: str | None  # Stripe's "month" / "year"
    unit_amount: int | None
    recurring_interval_count: int = 1  # 3 with "month": quarterly
    currency: str | None = None


@dataclass(frozen=True)
class SubscriptionView:
    id: str
    customer_id: str
    status: str
    item_id: str
    price: PriceRef
    billing_cycle_anchor: datetime
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    metadata: Mapping[str, str]
    latest_invoice_id: str | None
    # a change waiting for payment (payment_behavior=pending_if_incomplete)
    has_pending_update: bool = False
    created: datetime | None = None
    # why it ended: "cancellation_requested" (someone asked), "payment_failed", ...
    cancellation_reason: str | None = None
    ended_at: datetime | None = None


@dataclass(frozen=True)
class TaxId:
    type: str  # Stripe's tax ID type: "eu_vat", "gb_vat", "us_ein", ...
    value: str


@dataclass(frozen=True)
class CustomerView:
    id: str
    email: str | None
    deleted: bool = False
    tax_ids: tuple[TaxId, ...] = ()


@dataclass(frozen=True)
class InvoiceView:
    """One Stripe invoice, as the billing page and the refund policy read it."""

    id: str
    customer_id: str
    number: str | None
    status: str  # draft | open | paid | uncollectible | void
    created: datetime
    period_start: datetime | None
    period_end: datetime | None
    currency: str
    total: int  # cents, tax included
    tax: int
    amount_due: int
    # what the card paid: the customer's credit balance pays first and never reaches the card
    amount_paid: int
    # already given back on this invoice after payment (credit notes)
    credited: int
    billing_reason: str | None
    subscription_id: str | None
    hosted_invoice_url: str | None
    invoice_pdf: str | None
    # the part of `total` the customer's credit balance paid when the invoice was finalized
    paid_from_balance: int = 0
    # invoices sent to be paid (collection_method=send_invoice): when payment is due
    due_date: datetime | None = None
    paid_at: datetime | None = None
    # (name, value) printed on the invoice, e.g. ("PO number", "PO-7781")
    custom_fields: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class InvoicePage:
    data: list[InvoiceView]
    has_more: bool


@dataclass(frozen=True)
class PreviewLine:
    description: str
    amount: int  # cents; negative for a credit


@dataclass(frozen=True)
class ChangePreview:
    """What a plan change would bill now, without making it (Stripe's invoice preview)."""

    currency: str
    lines: list[PreviewLine]
    total: int
    amount_due: int  # after the customer's balance


@dataclass(frozen=True)
class CheckoutView:
    id: str
    url: str | None
    status: str  # open | complete | expired
    customer_id: str | None
    subscription_id: str | None
    client_reference_id: str | None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    object: dict[str, Any]


class BillingProcessor(Protocol):
    mode: str  # "stripe" | "manual"

    async def price_id(self, plan_id: str, interval: str) -> str:
        """The processor's price for a catalog plan and interval (see `stripe-sync`)."""
        ...

    async def create_checkout(
        self,
        *,
        org_id: str,
        price_id: str,
        customer_id: str,
        success_url: str,
        cancel_url: str,
        metadata: Mapping[str, str],
    ) -> CheckoutView: ...

    async def retrieve_checkout(self, session_id: str) -> CheckoutView: ...

    async def create_portal(self, *, customer_id: str, return_url: str) -> str: ...

    async def retrieve_subscription(self, subscription_id: str) -> SubscriptionView: ...

    async def live_subscriptions(self, customer_id: str) -> list[SubscriptionView]:
        """The customer's subscriptions that have not ended, newest first."""
        ...

    async def change_price(
        self, subscription: SubscriptionView, price_id: str, *, idempotency_key: str
    ) -> SubscriptionView: ...

    async def cancel(self, subscription_id: str, *, idempotency_key: str) -> SubscriptionView:
        """End the subscription now, with no proration: money back is `refund`'s job."""
        ...

    async def preview_change(self, subscription: SubscriptionView, price_id: str) -> ChangePreview:
        """What `change_price` to `price_id` would bill now."""
        ...

    async def expire_checkout(self, session_id: str) -> CheckoutView:
        """Close an open Checkout Session so it can no longer be paid."""
        ...

    async def retrieve_invoice(self, invoice_id: str) -> InvoiceView: ...

    async def list_invoices(
        self,
        *,
        customer_id: str | None = None,
        subscription_id: str | None = None,
        limit: int = 10,
        starting_after: str | None = None,
    ) -> InvoicePage:
        """Newest first."""
        ...

    async def payment_problem(self, invoice_id: str) -> str | None:
        """Why an open invoice is unpaid: NEEDS_ACTION, DECLINED, or None if not known."""
        ...

    async def refund(
        self, invoice_id: str, amount: int, *, credit: int = 0, memo: str, idempotency_key: str
    ) -> str:
        """One credit note on a paid invoice; its id.

        `amount` cents go back to the card (at most what the card paid), `credit`
        cents back to the customer's balance (what the balance paid).
        """
        ...

    async def retrieve_customer(self, customer_id: str) -> CustomerView: ...

    async def create_customer(self, *, org_id: str, email: str | None, idempotency_key: str) -> str:
        """A new customer for the organization; its id."""
        ...

    def verify_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent: ...


@runtime_checkable
class InvoiceBilling(BillingProcessor, Protocol):
    """What invoice payment terms need of the processor beyond `BillingProcessor`.

    Only Stripe has it (`StripeBilling`): an Enterprise plan paid by invoice is a
    subscription on a per-customer price that Stripe invoices and emails
    (`collection_method=send_invoice`) instead of charging a card. Manual billing
    has none of it, so callers check `isinstance(billing, InvoiceBilling)`.
    """

    async def create_customer(
        self, *, org_id: str, email: str | None, idempotency_key: str, name: str | None = None
    ) -> str: ...

    async def update_customer(
        self, customer_id: str, *, email: str, name: str | None, idempotency_key: str
    ) -> None:
        """Where Stripe emails invoices (and whom they are addressed to)."""
        ...

    async def ensure_product(self, product_id: str, *, name: str, metadata: Mapping[str, str]) -> None:
        """A product with this id, made if missing (prices hang off a product)."""
        ...

    async def create_recurring_price(
        self,
        *,
        product_id: str,
        amount_cents: int,
        currency: str,
        interval: str,
        interval_count: int,
        metadata: Mapping[str, str],
        nickname: str,
        idempotency_key: str,
    ) -> str:
        """A new price without a lookup key; its id."""
        ...

    async def create_invoiced_subscription(
        self,
        *,
        customer_id: str,
        price_id: str,
        days_until_due: int,
        metadata: Mapping[str, str],
        custom_fields: list[tuple[str, str]],
        idempotency_key: str,
    ) -> SubscriptionView:
        """A subscription whose invoices are emailed, payable in `days_until_due` days."""
        ...

    async def update_invoiced_subscription(
        self,
        subscription: SubscriptionView,
        *,
        price_id: str,
        days_until_due: int,
        metadata: Mapping[str, str],
        custom_fields: list[tuple[str, str]],
        idempotency_key: str,
    ) -> SubscriptionView:
        """Move it to `price_id` (prorated on its next invoice) with these terms."""
        ...
