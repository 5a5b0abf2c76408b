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
from typing import Any, Protocol

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


@dataclass(frozen=True)
class CustomerView:
    id: str
    email: str | None
    deleted: bool = False


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
        customer_id: str | None,
        customer_email: str | None,
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

    async def cancel(self, subscription_id: str, *, idempotency_key: str) -> SubscriptionView: ...

    async def retrieve_customer(self, customer_id: str) -> CustomerView: ...

    def verify_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent: ...
