"""Constructors for Stripe object shapes (as of the API version the SDK pins).

Fields an integration never reads are still present with Stripe's defaults, so code
that touches e.g. ``invoice.parent.subscription_details`` or ``customer.invoice_settings``
sees the same structure it will see in production.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .store import new_id


def customer(now: int, p: dict[str, Any]) -> dict[str, Any]:
    settings = p.get("invoice_settings") or {}
    return {
        "id": new_id("cus_"),
        "object": "customer",
        "address": p.get("address") or None,
        "balance": p.get("balance", 0),
        "business_name": p.get("business_name") or None,
        "created": now,
        "currency": None,
        "customer_account": None,
        "default_source": None,
        "delinquent": False,
        "description": p.get("description") or None,
        "discount": None,
        "email": p.get("email") or None,
        "individual_name": p.get("individual_name") or None,
        "invoice_prefix": p.get("invoice_prefix") or new_id("")[:8].upper(),
        "invoice_settings": {
            "custom_fields": settings.get("custom_fields") or None,
            "default_payment_method": settings.get("default_payment_method"),
            "footer": settings.get("footer") or None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": p.get("name") or None,
        "next_invoice_sequence": 1,
        "phone": p.get("phone") or None,
        "preferred_locales": p.get("preferred_locales") or [],
        "shipping": None,
        "tax_exempt": p.get("tax_exempt", "none"),
        "test_clock": None,
    }


def tax_id(now: int, customer_id: str, type_: str, value: str) -> dict[str, Any]:
    return {
        "id": new_id("txi_"),
        "object": "tax_id",
        "country": value[:2].upper() if type_.endswith("_vat") else None,
        "created": now,
        "customer": customer_id,
        "livemode": False,
        "owner": {"customer": customer_id, "type": "customer"},
        "type": type_,
        "value": value,
        "verification": {"status": "pending", "verified_address": None, "verified_name": None},
    }


def product(now: int, p: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": p.get("id") or new_id("prod_"),
        "object": "product",
        "active": p.get("active", True),
        "created": now,
        "default_price": None,
        "description": p.get("description") or None,
        "images": p.get("images") or [],
        "livemode": False,
        "marketing_features": p.get("marketing_features") or [],
        "metadata": {},
        "name": p["name"],
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": p.get("statement_descriptor"),
        "tax_code": p.get("tax_code"),
        "tax_details": None,
        "type": "service",
        "unit_label": p.get("unit_label"),
        "updated": now,
        "url": p.get("url"),
    }


def price(now: int, p: dict[str, Any], product_id: str) -> dict[str, Any]:
    recurring = p.get("recurring")
    amount = p.get("unit_amount")
    if amount is None and p.get("unit_amount_decimal") is not None:
        amount = int(p["unit_amount_decimal"])
    return {
        "id": new_id("price_"),
        "object": "price",
        "active": p.get("active", True),
        "billing_scheme": p.get("billing_scheme", "per_unit"),
        "created": now,
        "currency": p["currency"].lower(),
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": p.get("lookup_key"),
        "metadata": {},
        "nickname": p.get("nickname"),
        "product": product_id,
        "recurring": None
        if not recurring
        else {
            "interval": recurring["interval"],
            "interval_count": recurring.get("interval_count", 1),
            "meter": None,
            "trial_period_days": recurring.get("trial_period_days"),
            "usage_type": recurring.get("usage_type", "licensed"),
        },
        "tax_behavior": p.get("tax_behavior", "unspecified"),
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": amount,
        "unit_amount_decimal": None if amount is None else str(amount),
    }


def checkout_session(now: int, p: dict[str, Any], base_url: str) -> dict[str, Any]:
    """A Checkout Session in `subscription` mode, hosted by the emulator.

    Features the emulator does not offer (custom fields, shipping, consent, adaptive
    pricing...) are present with the values Stripe reports when they are not requested.
    """
    session_id = new_id("cs_test_")
    tax_collection = p.get("tax_id_collection") or {}
    return {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": None,
        "after_expiration": None,
        "allow_promotion_codes": p.get("allow_promotion_codes"),
        "allowed_payment_method_types": p.get("allowed_payment_method_types"),
        "amount_subtotal": None,
        "amount_total": None,
        # the session reports what it was asked for, so a test can see Stripe Tax
        # requested (Stripe docs: Checkout for new customers, `automatic_tax[enabled]`;
        # /work/shared/reference/stripe-and-billing-systems.md §1.1)
        "automatic_tax": {
            "enabled": bool((p.get("automatic_tax") or {}).get("enabled", False)),
            "liability": None,
            "status": None,
        },
        "billing_address_collection": p.get("billing_address_collection"),
        "branding_settings": None,
        "cancel_url": p.get("cancel_url"),
        "client_reference_id": p.get("client_reference_id"),
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": now,
        "currency": None,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": p.get("customer"),
        "customer_account": None,
        "customer_creation": None if p.get("customer") else "always",
        "customer_details": None,
        "customer_email": p.get("customer_email"),
        "discounts": [],
        "excluded_payment_method_types": p.get("excluded_payment_method_types"),
        "expires_at": p.get("expires_at") or now + 24 * 3600,
        "integration_identifier": p.get("integration_identifier"),
        "invoice": None,
        "invoice_creation": None,
        "livemode": False,
        "locale": p.get("locale"),
        "managed_payments": None,
        "metadata": dict(p.get("metadata") or {}),
        "mode": p.get("mode"),
        "name_collection": None,
        "optional_items": None,
        "origin_context": p.get("origin_context"),
        "payment_intent": None,
        "payment_link": None,
        # SDK docstring of `payment_method_collection`: "Can only be set in `subscription`
        # mode. Defaults to `always`."
        "payment_method_collection": p.get("payment_method_collection", "always"),
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": list(p.get("payment_method_types") or ["card"]),
        "payment_status": "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "presentment_details": None,
        "recovered_from": None,
        "redirect_on_completion": None,
        "return_url": p.get("return_url"),
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": p.get("submit_type"),
        "subscription": None,
        "success_url": p.get("success_url"),
        "tax_id_collection": {
            "enabled": bool(tax_collection.get("enabled", False)),
            "required": tax_collection.get("required", "never"),
        },
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        # SDK docstring of `ui_mode`: "Defaults to `hosted_page`."
        "ui_mode": p.get("ui_mode", "hosted_page"),
        "url": f"{base_url}/checkout/{session_id}",
        "wallet_options": None,
    }


def portal_configuration(now: int, p: dict[str, Any], is_default: bool) -> dict[str, Any]:
    features = p.get("features") or {}
    profile = p.get("business_profile") or {}
    return {
        "id": new_id("bpc_"),
        "object": "billing_portal.configuration",
        "active": True,
        "application": None,
        "business_profile": {
            "headline": profile.get("headline"),
            "privacy_policy_url": profile.get("privacy_policy_url"),
            "terms_of_service_url": profile.get("terms_of_service_url"),
        },
        "created": now,
        "default_return_url": p.get("default_return_url"),
        "features": features,
        "is_default": is_default,
        "livemode": False,
        "login_page": {"enabled": False, "url": None},
        "metadata": dict(p.get("metadata") or {}),
        "name": p.get("name"),
        "updated": now,
    }


def portal_session(
    now: int, customer_id: str, configuration_id: str, p: dict[str, Any], base_url: str
) -> dict[str, Any]:
    session_id = new_id("bps_")
    return {
        "id": session_id,
        "object": "billing_portal.session",
        "after_expiration": None,
        "configuration": configuration_id,
        "created": now,
        "customer": customer_id,
        "customer_account": None,
        "flow": None,
        "livemode": False,
        "locale": p.get("locale"),
        "on_behalf_of": p.get("on_behalf_of"),
        "return_url": p.get("return_url"),
        "url": f"{base_url}/portal/{session_id}",
    }


def subscription_item(now: int, sub_id: str, price_id: str, quantity: int) -> dict[str, Any]:
    return {
        "id": new_id("si_"),
        "object": "subscription_item",
        "billed_until": None,
        "billing_thresholds": None,
        "created": now,
        "current_period_end": None,
        "current_period_start": None,
        "current_trial": None,
        "discounts": [],
        "metadata": {},
        "price": price_id,  # stored as an id, rendered as the price object (and its `plan`)
        "quantity": quantity,
        "subscription": sub_id,
        "tax_rates": [],
    }


def subscription(now: int, customer_id: str, currency: str) -> dict[str, Any]:
    sub_id = new_id("sub_")
    return {
        "id": sub_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": now,
        "billing_cycle_anchor_config": None,
        # SDK docstring of `subscription_data.billing_mode.type` (Checkout): "If no value
        # is passed, the default is `flexible`." The adoption time is taken as creation.
        "billing_mode": {
            "flexible": {"proration_discounts": "included"},
            "type": "flexible",
            "updated_at": now,
        },
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": now,
        "currency": currency,
        # Kept for the emulator's own calendar (timeline, proration) and removed by
        # `render_subscription`: since 2025-03-31.basil the API shows them on the items only.
        "current_period_end": None,
        "current_period_start": None,
        "customer": customer_id,
        "customer_account": None,
        "days_until_due": None,
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {
            "account_tax_ids": None,
            "custom_fields": None,
            "description": None,
            "footer": None,
            "issuer": {"type": "self"},
        },
        "items": {
            "object": "list",
            "data": [],
            "has_more": False,
            "total_count": 0,
            "url": f"/v1/subscription_items?subscription={sub_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": {},
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "presentment_details": None,
        "schedule": None,
        "start_date": now,
        "status": "incomplete",
        "status_details": None,
        "test_clock": None,
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": None,
    }


# Stored on a subscription for the emulator's own calendar, never shown by the API.
SUBSCRIPTION_INTERNAL = ("current_period_start", "current_period_end")


def render_subscription(sub: dict[str, Any], price_of: Callable[[str], dict[str, Any]]) -> None:
    """Turn a stored subscription (a copy) into the API's shape, in place."""
    for key in SUBSCRIPTION_INTERNAL:
        sub.pop(key, None)
    for item in sub["items"]["data"]:
        item["price"] = copy.deepcopy(price_of(item["price"]))
        item["plan"] = plan(item["price"])


def plan(price: dict[str, Any]) -> dict[str, Any]:
    """The legacy Plan a subscription item still carries: its recurring price, as a plan.

    SDK docstring of `Plan`: the Prices API "replaces the Plans API and is backwards
    compatible"; a plan has the price's id.
    """
    recurring = price["recurring"] or {}
    return {
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": price["billing_scheme"],
        "created": price["created"],
        "currency": price["currency"],
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count"),
        "livemode": False,
        "metadata": dict(price["metadata"]),
        "meter": recurring.get("meter"),
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": price["tiers_mode"],
        "transform_usage": None,
        "trial_period_days": recurring.get("trial_period_days"),
        "usage_type": recurring.get("usage_type", "licensed"),
    }


@dataclass(frozen=True)
class Charge:
    """What one invoice line or invoice item bills: a price, for a quantity, over a period."""

    price: dict[str, Any]
    amount: int  # minor units; negative for a credit
    quantity: int
    description: str
    start: int
    end: int


def _pricing(price: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "price_details",
        "price_details": {"price": price["id"], "product": price["product"]},
        "unit_amount_decimal": str(price["unit_amount"]),
    }


def invoice_item(
    now: int, charge: Charge, *, customer_id: str, sub_id: str, item_id: str | None
) -> dict[str, Any]:
    return {
        "id": new_id("ii_"),
        "object": "invoiceitem",
        "amount": charge.amount,
        "currency": charge.price["currency"],
        "customer": customer_id,
        "date": now,
        "description": charge.description,
        "discountable": False,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": sub_id, "subscription_item": item_id},
        },
        "period": {"start": charge.start, "end": charge.end},
        "pricing": _pricing(charge.price),
        "proration": True,
        "proration_details": {"discount_amounts": []},
        "quantity": charge.quantity,
        "tax_rates": [],
        "test_clock": None,
    }


def invoice(
    now: int, customer: dict[str, Any], sub: dict[str, Any] | None, billing_reason: str
) -> dict[str, Any]:
    invoice_id = new_id("in_")
    return {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Stripe Emulator",
        "account_tax_ids": None,
        "amount_due": 0,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_paid_off_stripe": 0,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": True,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "automatically_finalizes_at": None,
        "billing_reason": billing_reason,
        "collection_method": sub["collection_method"] if sub else "charge_automatically",
        # set at finalization: the client_secret of the invoice's PaymentIntent (payments.py)
        "confirmation_secret": None,
        "created": now,
        "currency": sub["currency"] if sub else "usd",
        "custom_fields": None,
        "customer": customer["id"],
        "customer_account": None,
        "customer_address": customer.get("address"),
        "customer_email": customer.get("email"),
        "customer_name": customer.get("name"),
        "customer_phone": customer.get("phone"),
        "customer_shipping": None,
        "customer_tax_exempt": customer.get("tax_exempt"),
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "due_date": None,
        "effective_at": None,
        "ending_balance": None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": {
            "object": "list",
            "data": [],
            "has_more": False,
            "total_count": 0,
            "url": f"/v1/invoices/{invoice_id}/lines",
        },
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": None
        if sub is None
        else {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"metadata": dict(sub["metadata"]), "subscription": sub["id"]},
        },
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": now,
        "period_start": now,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_details": None,
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "test_clock": None,
        "threshold_reason": None,
        "total": 0,
        "total_discount_amounts": [],
        "total_excluding_tax": 0,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
    }


def invoice_line(
    charge: Charge,
    *,
    invoice_id: str,
    sub_id: str | None,
    item_id: str | None,
    proration: bool,
    invoice_item_id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": new_id("il_"),
        "object": "line_item",
        "amount": charge.amount,
        "currency": charge.price["currency"],
        "description": charge.description,
        "discount_amounts": [],
        "discountable": not proration,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": {},
        "parent": {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": invoice_item_id,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": sub_id,
                "subscription_item": item_id,
            },
        },
        "period": {"start": charge.start, "end": charge.end},
        "pretax_credit_amounts": [],
        "pricing": _pricing(charge.price),
        "quantity": charge.quantity,
        "quantity_decimal": str(charge.quantity),
        "subscription": sub_id,
        "subtotal": charge.amount,
        "taxes": [],
    }


def event(
    now: int,
    type_: str,
    obj: dict[str, Any],
    api_version: str,
    request: dict[str, Any] | None,
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"object": obj}
    if previous:
        data["previous_attributes"] = previous
    return {
        "id": new_id("evt_"),
        "object": "event",
        "api_version": api_version,
        "context": None,
        "created": now,
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": request or {"id": None, "idempotency_key": None},
        "type": type_,
    }
