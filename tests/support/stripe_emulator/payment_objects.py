"""Constructors for the objects that move money: cards, PaymentIntents, charges, refunds,
invoice payments and credit notes (as of the API version the SDK pins).

The billing objects (customers, subscriptions, invoices) are in :mod:`.objects`. Since
the Basil API, an invoice no longer names its PaymentIntent or charge, and a PaymentIntent
no longer names its invoice: the link is the InvoicePayment (``inpay_...``).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from .store import new_id

# what a charge's payment_method_details.card repeats from the card
_CARD_DETAILS = ("brand", "country", "exp_month", "exp_year", "funding", "last4")


def card_payment_method(
    now: int, customer_id: str, brand: str, number: str, billing_email: str | None
) -> dict[str, Any]:
    return {
        "id": new_id("pm_"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {
            "address": None,
            "email": billing_email,
            "name": None,
            "phone": None,
            "tax_id": None,
        },
        "card": {
            "brand": brand,
            "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
            "country": "US",
            "display_brand": brand,
            "exp_month": 12,
            "exp_year": 2034,
            # the same number always has the same fingerprint, like Stripe's
            "fingerprint": hashlib.sha256(number.encode()).hexdigest()[:16],
            "funding": "credit",
            "generated_from": None,
            "last4": number[-4:],
            "networks": {"available": [brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": now,
        "customer": customer_id,
        "customer_account": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }


def payment_intent(now: int, inv: dict[str, Any], description: str) -> dict[str, Any]:
    intent_id = new_id("pi_")
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": inv["amount_remaining"],
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": f"{intent_id}_secret_{secrets.token_hex(12)}",
        "confirmation_method": "automatic",
        "created": now,
        "currency": inv["currency"],
        "customer": inv["customer"],
        "customer_account": None,
        "description": description,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": {},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }


def invoice_payment(now: int, inv: dict[str, Any], intent: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": new_id("inpay_"),
        "object": "invoice_payment",
        "amount_paid": None,
        "amount_requested": intent["amount"],
        "created": now,
        "currency": inv["currency"],
        "invoice": inv["id"],
        # the payment the invoice made for itself at finalization (not one attached later)
        "is_default": True,
        "livemode": False,
        "payment": {"type": "payment_intent", "payment_intent": intent["id"]},
        "status": "open",
        "status_transitions": {"canceled_at": None, "paid_at": None},
    }


def charge(
    now: int, intent: dict[str, Any], payment_method: dict[str, Any] | None, failure: dict[str, Any] | None
) -> dict[str, Any]:
    card = (payment_method or {}).get("card") or {}
    succeeded = failure is None
    failure = failure or {}
    # Stripe's seller_message when an issuer declines without a reason
    declined_message = "The bank did not return any further details with this decline."
    return {
        "id": new_id("ch_"),
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"] if succeeded else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": new_id("txn_") if succeeded else None,
        "billing_details": (payment_method or {}).get("billing_details"),
        "calculated_statement_descriptor": "STRIPE EMULATOR",
        "captured": succeeded,
        "created": now,
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": failure.get("code"),
        "failure_message": failure.get("message"),
        "fraud_details": {},
        "livemode": False,
        "metadata": {},
        "on_behalf_of": None,
        "outcome": {
            "network_status": "approved_by_network" if succeeded else "declined_by_network",
            "reason": failure.get("decline_code"),
            "risk_level": "normal",
            "seller_message": "Payment complete." if succeeded else declined_message,
            "type": "authorized" if succeeded else "issuer_declined",
        },
        "paid": succeeded,
        "payment_intent": intent["id"],
        "payment_method": (payment_method or {}).get("id"),
        "payment_method_details": {
            "card": {k: card.get(k) for k in _CARD_DETAILS},
            "type": "card",
        },
        "receipt_email": None,
        "receipt_number": None,
        "receipt_url": None,
        "refunded": False,
        "review": None,
        "shipping": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded" if succeeded else "failed",
        "transfer_data": None,
        "transfer_group": None,
    }


def refund(now: int, ch: dict[str, Any], amount: int, reason: str | None) -> dict[str, Any]:
    return {
        "id": new_id("re_"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": new_id("txn_"),
        "charge": ch["id"],
        "created": now,
        "currency": ch["currency"],
        "customer": ch["customer"],
        "customer_account": None,
        "description": None,
        "destination_details": {
            "card": {
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        },
        "failure_balance_transaction": None,
        "failure_reason": None,
        "instructions_email": None,
        "metadata": {},
        "next_action": None,
        "payment_intent": ch["payment_intent"],
        "payment_method": ch["payment_method"],
        "pending_reason": None,
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }


def customer_balance_transaction(
    now: int, cust: dict[str, Any], amount: int, currency: str, credit_note_id: str, invoice_id: str
) -> dict[str, Any]:
    return {
        "id": new_id("cbtxn_"),
        "object": "customer_balance_transaction",
        "amount": amount,
        "checkout_session": None,
        "created": now,
        "credit_note": credit_note_id,
        "currency": currency,
        "customer": cust["id"],
        "customer_account": None,
        "description": None,
        "ending_balance": cust["balance"],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": {},
        "type": "credit_note",
    }


def credit_note_line(
    *,
    kind: str,
    amount: int,
    description: str | None,
    quantity: int | None,
    unit_amount: int | None,
    invoice_line_item: str | None,
) -> dict[str, Any]:
    return {
        "id": new_id("cnli_"),
        "object": "credit_note_line_item",
        "amount": amount,
        "description": description,
        "discount_amount": 0,
        "discount_amounts": [],
        "invoice_line_item": invoice_line_item,
        "livemode": False,
        "metadata": {},
        "pretax_credit_amounts": [],
        "quantity": quantity,
        "tax_rates": [],
        "taxes": [],
        "type": kind,
        "unit_amount": unit_amount,
        "unit_amount_decimal": None if unit_amount is None else str(unit_amount),
    }


def credit_note(now: int, inv: dict[str, Any], number: str, base_url: str) -> dict[str, Any]:
    note_id = new_id("cn_")
    return {
        "id": note_id,
        "object": "credit_note",
        "amount": 0,
        "amount_shipping": 0,
        "created": now,
        "currency": inv["currency"],
        "customer": inv["customer"],
        "customer_account": None,
        "customer_balance_transaction": None,
        "discount_amount": 0,
        "discount_amounts": [],
        "effective_at": now,
        "invoice": inv["id"],
        "lines": {
            "object": "list",
            "data": [],
            "has_more": False,
            "total_count": 0,
            "url": f"/v1/credit_notes/{note_id}/lines",
        },
        "livemode": False,
        "memo": None,
        "metadata": {},
        "number": number,
        "out_of_band_amount": None,
        "pdf": f"{base_url}/credit_note/{note_id}/pdf",
        "post_payment_amount": 0,
        "pre_payment_amount": 0,
        "pretax_credit_amounts": [],
        "reason": None,
        "refunds": [],
        "shipping_cost": None,
        "status": "issued",
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "total": 0,
        "total_excluding_tax": 0,
        "total_taxes": [],
        "type": "pre_payment",
        "voided_at": None,
    }
