"""The Stripe implementation of the billing provider: the only module that imports `stripe`.

The API version is pinned here, so a Stripe account upgrade or an SDK bump
cannot silently change the shapes we read (period fields moved from the
subscription to its items in 2025, for example). SDK objects are turned into
the value objects of `billing.processor` (views.py reads their JSON) and SDK
errors into `BillingProcessorError` before anything leaves this module.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import stripe

from modelux_server.billing.processor import (
    DECLINED,
    NEEDS_ACTION,
    BillingProcessorError,
    ChangePreview,
    CheckoutView,
    CustomerView,
    InvalidWebhook,
    InvoicePage,
    InvoiceView,
    MalformedWebhook,
    SubscriptionView,
    TaxId,
    WebhookEvent,
    lookup_key,
)
from modelux_server.billing.stripe.views import change_preview, checkout_view, invoice_view, subscription_view

API_VERSION = "2026-10-28.endive"

log = logging.getLogger("modelux.billing")
# A missing catalog object is the operator's to fix; the error's text reaches the
# customer (API, MCP, dashboard), so the command is logged for the operator instead.
NOT_PUBLISHED = "ask your administrator to publish the plan catalog to the payment processor."

# Marks the customer-portal configuration that `stripe-sync` writes, so both the
# sync and every portal session find it again: a configuration made through the
# API never becomes the account's default, so sessions have to name it.
PORTAL_MARK = {"modelux": "portal"}


# Stripe docs, "Payment method support" (delayed notification): debits,
# bank transfers and vouchers confirm days after Checkout. This API version
# no longer takes payment_method_types on a Checkout Session, so they are
# excluded by name; webhooks.py still follows a Checkout paid asynchronously.
DELAYED_METHODS = (
    "acss_debit",
    "au_becs_debit",
    "bacs_debit",
    "boleto",
    "customer_balance",
    "konbini",
    "multibanco",
    "nz_bank_account",
    "oxxo",
    "pay_by_bank",
    "payto",
    "sepa_debit",
    "sofort",
    "us_bank_account",
)


def _dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, stripe.StripeObject):
        return obj.to_dict()
    return dict(obj)


def _marked(metadata: Any) -> bool:
    return isinstance(metadata, Mapping) and all(metadata.get(k) == v for k, v in PORTAL_MARK.items())


class StripeBilling:
    mode = "stripe"

    def __init__(
        self,
        secret_key: str,
        webhook_secret: str | None,
        *,
        api_base: str | None = None,
        tolerance: int = 300,
        timeout: float = 20.0,
        automatic_tax: bool = False,
    ) -> None:
        self._http = stripe.HTTPXClient(timeout=timeout)
        self._client = stripe.StripeClient(
            secret_key,
            stripe_version=API_VERSION,
            base_addresses={"api": api_base} if api_base else {},
            http_client=self._http,
            # the SDK retries with the same idempotency key, so a retry is safe
            max_network_retries=2,
        )
        self._webhook_secret = webhook_secret
        self._tolerance = tolerance
        self._automatic_tax = automatic_tax

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]  # unannotated in the SDK

    # ------------------------------------------------------------------ webhooks
    def verify_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent:
        """Check `Stripe-Signature` over the raw bytes, then read the event.

        The timestamp tolerance is measured against wall-clock time, not the
        service clock: Stripe signs with real time even for test clocks.
        """
        if not self._webhook_secret:
            raise InvalidWebhook("MODELUX_STRIPE_WEBHOOK_SECRET is not set; webhooks cannot be verified.")
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature, self._webhook_secret, tolerance=self._tolerance
            )
            data = json.loads(payload)
            event = WebhookEvent(id=data["id"], type=data["type"], object=data["data"]["object"])
        except stripe.SignatureVerificationError as exc:
            raise InvalidWebhook(str(exc).split(". ")[0]) from None
        except (UnicodeDecodeError, ValueError, KeyError, TypeError):
            raise MalformedWebhook("The webhook body is not a Stripe event.") from None
        # Signed is not the same as well-formed: a body that passes the signature
        # still has to look like an event before anything is stored under its id.
        if not (
            isinstance(event.id, str)
            and 0 < len(event.id) <= 255
            and isinstance(event.type, str)
            and 0 < len(event.type) <= 100
            and isinstance(event.object, dict)
            and isinstance(event.object.get("id"), str)
            and "\x00" not in event.id + event.type + event.object["id"]
        ):
            raise MalformedWebhook("The webhook body is not a Stripe event.")
        return event

    # ------------------------------------------------------------------ catalog
    async def price_id(self, plan_id: str, interval: str) -> str:
        key = lookup_key(plan_id, interval)
        prices = await self.prices_by_lookup_keys([key])
        live = [p for p in prices if p.get("active")]
        if not live:
            log.error("Stripe has no active price %r: run `modelux admin stripe-sync`", key)
            raise BillingProcessorError(
                f"This plan has no price with the payment processor yet ('{key}'); {NOT_PUBLISHED}",
                not_found=True,
            )
        return str(live[0]["id"])

    async def prices_by_lookup_keys(self, keys: list[str]) -> list[dict[str, Any]]:
        async with _converted():
            page = await self._client.v1.prices.list_async(params={"lookup_keys": keys, "limit": 100})
        return [_dict(p) for p in page.data]

    async def retrieve_product(self, product_id: str) -> dict[str, Any] | None:
        try:
            async with _converted():
                return _dict(await self._client.v1.products.retrieve_async(product_id))
        except BillingProcessorError as exc:
            if exc.not_found:
                return None
            raise

    async def create_product(self, params: Any) -> dict[str, Any]:
        async with _converted():
            return _dict(await self._client.v1.products.create_async(params=params))

    async def update_product(self, product_id: str, params: Any) -> dict[str, Any]:
        async with _converted():
            return _dict(await self._client.v1.products.update_async(product_id, params=params))

    async def create_price(self, params: Any) -> dict[str, Any]:
        async with _converted():
            return _dict(await self._client.v1.prices.create_async(params=params))

    async def update_price(self, price_id: str, params: Any) -> dict[str, Any]:
        async with _converted():
            return _dict(await self._client.v1.prices.update_async(price_id, params=params))

    async def portal_configurations(self) -> list[dict[str, Any]]:
        async with _converted():
            page = await self._client.v1.billing_portal.configurations.list_async(
                params={"active": True, "limit": 100}
            )
        return [_dict(c) for c in page.data]

    async def create_portal_configuration(self, params: Any) -> dict[str, Any]:
        async with _converted():
            return _dict(await self._client.v1.billing_portal.configurations.create_async(params=params))

    async def update_portal_configuration(self, conf_id: str, params: Any) -> dict[str, Any]:
        async with _converted():
            conf = await self._client.v1.billing_portal.configurations.update_async(conf_id, params=params)
        return _dict(conf)

    # ------------------------------------------------------------------ checkout and portal
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
        params: dict[str, Any] = {
            "mode": "subscription",
            "line_items": [{"price": price_id, "quantity": 1}],
            "success_url": success_url,
            "cancel_url": cancel_url,
            # the session carries the org; later subscription events only carry
            # the subscription's metadata, so the org id travels there too
            "client_reference_id": org_id,
            "metadata": dict(metadata),
            "subscription_data": {"metadata": dict(metadata)},
            "tax_id_collection": {"enabled": True},
            # no payment method whose payment settles days later: a plan change
            # charges at once and keeps the old plan until that is paid
            # (pending_if_incomplete), which Stripe does not support for them
            "excluded_payment_method_types": list(DELAYED_METHODS),
            "billing_address_collection": "auto",
        }
        if self._automatic_tax:
            # the subscription Checkout creates keeps automatic_tax enabled, so its
            # renewals and prorations are taxed too; plan changes cannot pass it
            # (pending_if_incomplete refuses every parameter outside its short list)
            params["automatic_tax"] = {"enabled": True}
        # the organization's customer, made before its first Checkout (subscriptions.py);
        # Stripe saves a collected tax ID on an existing customer only with customer_update
        params["customer"] = customer_id
        params["customer_update"] = {"name": "auto", "address": "auto"}
        async with _converted():
            session = await self._client.v1.checkout.sessions.create_async(params=params)  # type: ignore[arg-type]
        return checkout_view(_dict(session))

    async def retrieve_checkout(self, session_id: str) -> CheckoutView:
        async with _converted():
            return checkout_view(_dict(await self._client.v1.checkout.sessions.retrieve_async(session_id)))

    async def create_portal(self, *, customer_id: str, return_url: str) -> str:
        # Looked up per session rather than cached: a re-run of stripe-sync after
        # someone archived ours makes a new one, and portal clicks are rare.
        ours = [c for c in await self.portal_configurations() if _marked(c.get("metadata"))]
        if not ours:
            log.error("Stripe has no modelux customer-portal configuration: run `modelux admin stripe-sync`")
            raise BillingProcessorError(
                f"The billing portal is not set up with the payment processor yet; {NOT_PUBLISHED}",
                not_found=True,
            )
        async with _converted():
            session = await self._client.v1.billing_portal.sessions.create_async(
                params={"customer": customer_id, "return_url": return_url, "configuration": ours[0]["id"]}
            )
        return str(session.url)

    # ------------------------------------------------------------------ subscriptions
    async def retrieve_subscription(self, subscription_id: str) -> SubscriptionView:
        async with _converted():
            sub = await self._client.v1.subscriptions.retrieve_async(subscription_id)
        return subscription_view(_dict(sub))

    async def live_subscriptions(self, customer_id: str) -> list[SubscriptionView]:
        async with _converted():
            page = await self._client.v1.subscriptions.list_async(
                params={"customer": customer_id, "limit": 100}
            )
        views = [subscription_view(_dict(s)) for s in page.data]
        return sorted(views, key=lambda s: s.created or s.billing_cycle_anchor, reverse=True)

    async def change_price(
        self, subscription: SubscriptionView, price_id: str, *, idempotency_key: str
    ) -> SubscriptionView:
        """Switch the subscription's price now and bill the proration now.

        `always_invoice` charges (or credits) the prorated difference at once
        rather than on the next renewal, matching "plan changes take effect
        immediately". `pending_if_incomplete` keeps the old price if that
        charge fails, so a declined card never buys an upgrade.
        """
        async with _converted():
            sub = await self._client.v1.subscriptions.update_async(
                subscription.id,
                params={
                    "items": [{"id": subscription.item_id, "price": price_id}],
                    "proration_behavior": "always_invoice",
                    "payment_behavior": "pending_if_incomplete",
                },
                options={"idempotency_key": idempotency_key},
            )
        return subscription_view(_dict(sub))

    async def cancel(self, subscription_id: str, *, idempotency_key: str) -> SubscriptionView:
        """End the subscription now, without a proration credit.

        Stripe's proration would put the unused time on the customer's
        balance, which only future invoices can spend; the caller refunds it
        instead (`refund`, see docs/decisions/0005). `invoice_now` still bills
        any pending invoice items, so nothing owed is dropped.
        """
        async with _converted():
            sub = await self._client.v1.subscriptions.cancel_async(
                subscription_id,
                params={"prorate": False, "invoice_now": True},
                options={"idempotency_key": idempotency_key},
            )
        return subscription_view(_dict(sub))

    async def preview_change(self, subscription: SubscriptionView, price_id: str) -> ChangePreview:
        """The invoice `change_price` would create now, with the same proration settings."""
        async with _converted():
            raw = await self._client.v1.invoices.create_preview_async(
                params={
                    "customer": subscription.customer_id,
                    "subscription": subscription.id,
                    "subscription_details": {
                        "items": [{"id": subscription.item_id, "price": price_id}],
                        "proration_behavior": "always_invoice",
                    },
                }
            )
        return change_preview(_dict(raw))

    async def expire_checkout(self, session_id: str) -> CheckoutView:
        async with _converted():
            return checkout_view(_dict(await self._client.v1.checkout.sessions.expire_async(session_id)))

    # ------------------------------------------------------------------ invoices and refunds
    async def retrieve_invoice(self, invoice_id: str) -> InvoiceView:
        async with _converted():
            return invoice_view(_dict(await self._client.v1.invoices.retrieve_async(invoice_id)))

    async def list_invoices(
        self,
        *,
        customer_id: str | None = None,
        subscription_id: str | None = None,
        limit: int = 10,
        starting_after: str | None = None,
    ) -> InvoicePage:
        params: dict[str, Any] = {"limit": limit}
        if customer_id:
            params["customer"] = customer_id
        if subscription_id:
            params["subscription"] = subscription_id
        if starting_after:
            params["starting_after"] = starting_after
        async with _converted():
            page = await self._client.v1.invoices.list_async(params=params)  # type: ignore[arg-type]
        return InvoicePage([invoice_view(_dict(i)) for i in page.data], bool(page.has_more))

    async def payment_problem(self, invoice_id: str) -> str | None:
        """Read the invoice's latest payment attempt (a PaymentIntent) for why it failed."""
        async with _converted():
            payments = await self._client.v1.invoice_payments.list_async(
                params={"invoice": invoice_id, "limit": 10}
            )
            intents = [p.payment.payment_intent for p in payments.data if p.payment.payment_intent]
            if not intents:
                return None
            ref = intents[0]
            intent_id = ref if isinstance(ref, str) else ref.id
            intent = await self._client.v1.payment_intents.retrieve_async(intent_id)
        if intent.status == "requires_action":
            return NEEDS_ACTION
        if intent.status == "requires_payment_method":
            return DECLINED
        return None

    async def refund(
        self, invoice_id: str, amount: int, *, credit: int = 0, memo: str, idempotency_key: str
    ) -> str:
        """A credit note on the invoice: `amount` refunded to the card, `credit` to the balance.

        Stripe refunds at most what the invoice's charge took (`amount_paid`);
        the part the customer's balance paid can only go back to the balance.
        """
        params: dict[str, Any] = {
            "invoice": invoice_id,
            "amount": amount + credit,
            "reason": "order_change",
            "memo": memo,
        }
        if amount:
            params["refund_amount"] = amount
        if credit:
            params["credit_amount"] = credit
        async with _converted():
            note = await self._client.v1.credit_notes.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        return str(note.id)

    # ------------------------------------------------------------------ customers
    async def create_customer(
        self, *, org_id: str, email: str | None, idempotency_key: str, name: str | None = None
    ) -> str:
        params: dict[str, Any] = {"metadata": {"org_id": org_id}}
        if email:
            params["email"] = email
        if name:
            params["name"] = name
        async with _converted():
            customer = await self._client.v1.customers.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        return str(customer.id)

    async def update_customer(
        self, customer_id: str, *, email: str, name: str | None, idempotency_key: str
    ) -> None:
        params: dict[str, Any] = {"email": email, "name": name or ""}
        async with _converted():
            await self._client.v1.customers.update_async(
                customer_id,
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )

    # ------------------------------------------------------------------ invoiced subscriptions
    async def ensure_product(self, product_id: str, *, name: str, metadata: Mapping[str, str]) -> None:
        if await self.retrieve_product(product_id) is not None:
            return
        try:
            await self.create_product({"id": product_id, "name": name, "metadata": dict(metadata)})
        except BillingProcessorError:
            # made meanwhile by another request: Stripe refuses a second product with that id
            if await self.retrieve_product(product_id) is None:
                raise

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
        """A price of its own for one customer: no lookup key, so no catalog lookup finds it."""
        params: dict[str, Any] = {
            "product": product_id,
            "unit_amount": amount_cents,
            "currency": currency,
            "recurring": {"interval": interval, "interval_count": interval_count},
            "metadata": dict(metadata),
            "nickname": nickname,
        }
        async with _converted():
            price = await self._client.v1.prices.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        return str(price.id)

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
        """`send_invoice`: Stripe finalizes each invoice and emails it to the customer, who
        pays within `days_until_due` days; nothing is charged to a card."""
        params: dict[str, Any] = {
            "customer": customer_id,
            "items": [{"price": price_id, "quantity": 1}],
            "collection_method": "send_invoice",
            "days_until_due": days_until_due,
            "metadata": dict(metadata),
        }
        if custom_fields:
            params["invoice_settings"] = {"custom_fields": _fields(custom_fields)}
        async with _converted():
            sub = await self._client.v1.subscriptions.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        return subscription_view(_dict(sub))

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
        """Stripe's default proration (`create_prorations`): the difference for the rest of
        the period goes on the next invoice; an interval change restarts the period now and
        invoices it at once, less the unused part of the old one."""
        params: dict[str, Any] = {
            "days_until_due": days_until_due,
            "metadata": dict(metadata),
            "invoice_settings": {"custom_fields": _fields(custom_fields) if custom_fields else ""},
        }
        if price_id != subscription.price.id:
            params["items"] = [{"id": subscription.item_id, "price": price_id}]
            params["proration_behavior"] = "create_prorations"
        async with _converted():
            sub = await self._client.v1.subscriptions.update_async(
                subscription.id,
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        return subscription_view(_dict(sub))

    async def retrieve_customer(self, customer_id: str) -> CustomerView:
        async with _converted():
            raw = _dict(await self._client.v1.customers.retrieve_async(customer_id))
            if raw.get("deleted"):
                return CustomerView(id=raw["id"], email=None, deleted=True)
            ids = await self._client.v1.customers.tax_ids.list_async(customer_id, params={"limit": 100})
        tax_ids = tuple(TaxId(type=t.type, value=t.value) for t in ids.data)
        return CustomerView(id=raw["id"], email=raw.get("email"), tax_ids=tax_ids)


def _fields(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in pairs]


class _converted:
    """Turn SDK errors into `BillingProcessorError` at the boundary (async with)."""

    async def __aenter__(self) -> None:
        return None

    # returns None (never swallows): mypy then knows every `return` inside runs
    async def __aexit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None or not isinstance(exc, stripe.StripeError):
            return
        message = exc.user_message or str(exc) or type(exc).__name__
        if isinstance(exc, stripe.CardError):
            raise BillingProcessorError(message, declined=True) from exc
        missing = isinstance(exc, stripe.InvalidRequestError) and (
            exc.http_status == 404 or exc.code == "resource_missing"
        )
        raise BillingProcessorError(f"Stripe: {message}", not_found=missing) from exc
