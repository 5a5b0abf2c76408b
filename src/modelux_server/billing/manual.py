"""Manual billing: the embedded default, with no payment processor.

Operators assign plans with `modelux admin set-plan`; every self-serve
payment action answers one clear 409 instead of half-working.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NoReturn

from modelux_server.billing.processor import (
    ChangePreview,
    CheckoutView,
    CustomerView,
    InvalidWebhook,
    InvoicePage,
    InvoiceView,
    SubscriptionView,
    WebhookEvent,
)
from modelux_server.errors import Conflict

# read by customers (API, MCP, dashboard): no setting or command names, which are the
# operator's business (docs/operations.md tells the operator how to enable Stripe)
MESSAGE = (
    "Online payments are not set up on this server (manual mode): plans are managed by your "
    "administrator, so there is no checkout, plan change or billing portal here. Ask your "
    "administrator to change the plan, or talk to sales."
)


def not_configured() -> Conflict:
    return Conflict(MESSAGE, code="billing_not_configured")


class ManualBilling:
    mode = "manual"

    def _refuse(self) -> NoReturn:
        raise not_configured()

    async def price_id(self, plan_id: str, interval: str) -> str:
        self._refuse()

    async def create_checkout(
        self,
        *,
        org_id: str,
        price_id: str,
        customer_id: str,
        success_url: str,
        cancel_url: str,
        metadata: Mapping[str, str],
    ) -> CheckoutView:
        self._refuse()

    async def retrieve_checkout(self, session_id: str) -> CheckoutView:
        self._refuse()

    async def create_portal(self, *, customer_id: str, return_url: str) -> str:
        self._refuse()

    async def retrieve_subscription(self, subscription_id: str) -> SubscriptionView:
        self._refuse()

    async def live_subscriptions(self, customer_id: str) -> list[SubscriptionView]:
        self._refuse()

    async def change_price(
        self, subscription: SubscriptionView, price_id: str, *, idempotency_key: str
    ) -> SubscriptionView:
        self._refuse()

    async def cancel(self, subscription_id: str, *, idempotency_key: str) -> SubscriptionView:
        self._refuse()

    async def preview_change(self, subscription: SubscriptionView, price_id: str) -> ChangePreview:
        self._refuse()

    async def expire_checkout(self, session_id: str) -> CheckoutView:
        self._refuse()

    async def retrieve_invoice(self, invoice_id: str) -> InvoiceView:
        self._refuse()

    async def list_invoices(
        self,
        *,
        customer_id: str | None = None,
        subscription_id: str | None = None,
        limit: int = 10,
        starting_after: str | None = None,
    ) -> InvoicePage:
        self._refuse()

    async def payment_problem(self, invoice_id: str) -> str | None:
        self._refuse()

    async def refund(
        self, invoice_id: str, amount: int, *, credit: int = 0, memo: str, idempotency_key: str
    ) -> str:
        self._refuse()

    async def retrieve_customer(self, customer_id: str) -> CustomerView:
        self._refuse()

    async def create_customer(self, *, org_id: str, email: str | None, idempotency_key: str) -> str:
        self._refuse()

    def verify_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent:
        # without a webhook secret nothing can be verified, so nothing is accepted
        raise InvalidWebhook("Stripe webhooks are not configured on this server.")
