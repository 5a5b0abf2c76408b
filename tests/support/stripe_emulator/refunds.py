"""Refunds made directly (``POST /v1/refunds``), and the limit every refund obeys.

A refund gives back part of one charge, never more than the charge took: SDK docstring of
``RefundCreateParams.amount`` (Stripe's API reference): "A positive integer in cents
representing how much of this charge to refund. Can refund only up to the remaining,
unrefunded amount of the charge." An invoice paid partly from the customer's credit balance
was charged only ``amount_paid`` (the balance part never reached the card), so that is all
its charge can return. Credit notes (:mod:`.credit_notes`) refund through the same limit.

Stripe answers an over-refund with an uncoded ``invalid_request_error`` on ``amount``,
"Refund amount ($X) is greater than charge amount ($Y)", or "... than unrefunded amount on
charge ($Y)" once part of the charge was refunded (the wording integrations match on).
"""

from __future__ import annotations

from .errors import StripeApiError, invalid
from .payments import SUCCEEDED
from .resource import Obj, Resource, merge_metadata

# SDK docstring of RefundCreateParams.reason: "possible values are `duplicate`,
# `fraudulent`, and `requested_by_customer`".
REASONS = ("duplicate", "fraudulent", "requested_by_customer")
_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}


def _money(cents: int, currency: str) -> str:
    symbol = _SYMBOLS.get(currency, f"{currency.upper()} ")
    return f"{symbol}{cents // 100}.{cents % 100:02d}"


def check_refundable(ch: Obj, amount: int, param: str) -> None:
    """Refuse, as Stripe does, a refund of more than is left on the charge."""
    if ch["refunded"]:
        raise StripeApiError(f"Charge {ch['id']} has already been refunded.", code="charge_already_refunded")
    left = ch["amount"] - ch["amount_refunded"]
    if amount <= left:
        return
    asked, currency = _money(amount, ch["currency"]), ch["currency"]
    if ch["amount_refunded"]:
        limit = f"unrefunded amount on charge ({_money(left, currency)})"
    else:
        limit = f"charge amount ({_money(ch['amount'], currency)})"
    raise invalid(f"Refund amount ({asked}) is greater than {limit}", param)


class Refunds(Resource):
    def create(self, p: Obj) -> Obj:
        """``POST /v1/refunds``: part or all of what is left on a charge, back to the card."""
        ch = self._charge(p)
        for unsupported, why in (
            ("customer", "the emulator has no cash balances to refund from"),
            ("origin", "the emulator has no cash balances to refund from"),
            ("instructions_email", "the emulator's cards refund natively"),
            ("refund_application_fee", "the emulator has no Connect application fees"),
            ("reverse_transfer", "the emulator has no Connect transfers"),
        ):
            if unsupported in p:
                raise invalid(f"`{unsupported}` is not supported: {why}.", unsupported)
        if "currency" in p and p["currency"] != ch["currency"]:
            raise invalid(f"The charge {ch['id']} is in {ch['currency']}, not {p['currency']}.", "currency")
        reason = p.get("reason")
        if reason is not None and reason not in REASONS:
            raise invalid(f"Invalid reason: must be one of {', '.join(REASONS)}", "reason")
        amount = p.get("amount", ch["amount"] - ch["amount_refunded"])
        if amount < 1:
            raise invalid(
                "This value must be greater than or equal to 1.", "amount", code="parameter_invalid_integer"
            )
        check_refundable(ch, amount, "amount")
        re = self.engine.payments.refund(ch, amount, reason)
        re["metadata"] = merge_metadata({}, p.get("metadata"))
        self.events.emit("refund.created", re)
        self.events.emit("charge.refunded", ch)
        return re

    def _charge(self, p: Obj) -> Obj:
        """The charge named by ``charge`` or by ``payment_intent`` (its latest charge)."""
        if "charge" not in p and "payment_intent" not in p:
            raise invalid(
                "You must pass either `charge` or `payment_intent`.", "charge", code="parameter_missing"
            )
        if "payment_intent" in p:
            intent = self.store.get(p["payment_intent"], "payment_intent", "payment_intent")
            if intent["status"] != SUCCEEDED:
                raise invalid(
                    f"PaymentIntent {intent['id']} does not have a successful charge to refund.",
                    "payment_intent",
                )
            if "charge" in p and p["charge"] != intent["latest_charge"]:
                raise invalid(
                    f"The charge {p['charge']} does not belong to PaymentIntent {intent['id']}.", "charge"
                )
            charge_id = intent["latest_charge"]
        else:
            charge_id = p["charge"]
        ch = self.store.get(charge_id, "charge", "charge")
        if ch["status"] != SUCCEEDED:
            raise invalid(f"Charge {ch['id']} did not succeed: there is nothing to refund.", "charge")
        return ch
