"""Cards on file, and what happens when an invoice is charged.

A finalized invoice with something to pay gets one PaymentIntent (``pi_...``) and one
default InvoicePayment (``inpay_...``) linking the two; every attempt on the invoice,
automatic or through ``POST /v1/invoices/{id}/pay``, confirms that same PaymentIntent.
:meth:`Payments.confirm` decides the attempt from Stripe's test cards:

- ``succeeded``: a charge (``ch_...``) is made, the invoice payment is ``paid``;
- ``requires_payment_method``: declined, with ``last_payment_error`` (``card_declined``);
- ``requires_action``: the bank asks for 3-D Secure, which only a customer at a Stripe
  page (Checkout, the hosted invoice page) can complete; ``next_action`` says how.

Stripe Billing charges renewals and API-driven changes *off-session* (SDK docstring of
``InvoicePayParams.off_session``: "Defaults to `true` (off-session)"); Checkout and the
hosted invoice page charge *on-session*, with the customer there to authenticate
(:meth:`Payments.context`). A customer with no card on file pays as if with 4242..., which
is what the emulator did before it knew cards.

Routes: ``GET /v1/payment_intents/{id}``, ``/v1/invoice_payments[/{id}]``,
``/v1/payment_methods/{id}``, ``/v1/charges/{id}``, ``/v1/refunds/{id}`` (creating a
refund: :mod:`.refunds`). Only the
``invoice.*`` events are sent for a payment, not ``payment_intent.*``/``charge.*``, so
adding cards did not change the event stream integrations already see.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import payment_objects
from .errors import StripeApiError, card_declined, invalid
from .resource import Obj, Objs, Resource
from .store import created_matches, new_id

if TYPE_CHECKING:
    from .engine import Engine

SUCCEEDED = "succeeded"
DECLINED = "requires_payment_method"
REQUIRES_ACTION = "requires_action"

DEFAULT_CARD = "4242424242424242"


@dataclass(frozen=True)
class CardRules:
    brand: str
    declines: bool = False
    # "never"; "unless_set_up": on-session always, off-session unless set up for it; "always"
    authentication: str = "never"


# Stripe docs: Testing (docs.stripe.com/testing), "Declined payments" and "Authentication and
# setup"; Invoicing testing (docs.stripe.com/invoicing/integration/testing): "to simulate a
# declined payment for a card that's been successfully attached to a customer, use
# 4000 0000 0000 0341 as their default payment method."
TEST_CARDS = {
    "4242424242424242": CardRules("visa"),
    "5555555555554444": CardRules("mastercard"),
    "4000000000000341": CardRules("visa", declines=True),
    # "requires authentication for off-session payments unless you set it up for future
    # payments. After you set it up, off-session payments no longer require authentication.
    # However, on-session payments with this card always require authentication."
    "4000002500003155": CardRules("visa", authentication="unless_set_up"),
    # "requires authentication on all transactions, regardless of how the card is set up"
    "4000002760003184": CardRules("visa", authentication="always"),
}

# PaymentIntent.description Stripe Billing gives an invoice's payment, by billing_reason
_DESCRIPTIONS = {
    "subscription_create": "Subscription creation",
    "subscription_cycle": "Subscription cycle",
    "subscription_update": "Subscription update",
}


def known_card(number: str) -> CardRules:
    """What a test card number does; a number the emulator does not know is a test bug."""
    card = TEST_CARDS.get(number.replace(" ", ""))
    if card is None:
        raise ValueError(f"not a test card the emulator knows: {number} (known: {', '.join(TEST_CARDS)})")
    return card


@dataclass(frozen=True)
class ChargeContext:
    """How the charges made inside :meth:`Payments.context` reach the card."""

    payment_method: str | None = None  # instead of the invoice's default
    off_session: bool = True
    customer_present: bool = False  # at a Stripe page: completes 3-D Secure when asked


class Payments(Resource):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        # What each card does, by payment method id: the number itself is not stored.
        self._cards: dict[str, CardRules] = {}
        # Cards saved for off-session use (Checkout in subscription mode, a SetupIntent).
        self._set_up: set[str] = set()
        self._context = ChargeContext()

    # ---------------------------------------------------------------- cards
    def attach_card(self, customer_id: str, number: str, *, set_up_off_session: bool) -> Obj:
        cust = self.store.get(customer_id, "customer")
        card = known_card(number)
        pm = payment_objects.card_payment_method(
            self.now(), cust["id"], card.brand, number.replace(" ", ""), cust["email"]
        )
        self.store.add("payment_methods", pm)
        self._cards[pm["id"]] = card
        if set_up_off_session:
            self._set_up.add(pm["id"])
        return pm

    def set_default_card(self, customer_id: str, number: str, *, set_up_off_session: bool) -> Obj:
        """The customer's card is now this one: it pays everything from here on.

        Stripe charges the invoice's, then the subscription's, then the customer's default
        payment method (SDK docstring of Subscription.payment_settings.payment_method_types),
        and Checkout gives its subscription a ``default_payment_method`` of its own. So the
        card becomes the customer's ``invoice_settings.default_payment_method`` *and* replaces
        the default of every live subscription that has one, as an integration's "update my
        card" does; the API itself (``POST /v1/customers/{id}``) changes only the customer's.
        """
        pm = self.attach_card(customer_id, number, set_up_off_session=set_up_off_session)
        cust = self.store.get(customer_id, "customer")
        before = self.engine.render(cust)
        cust["invoice_settings"]["default_payment_method"] = pm["id"]
        self.events.emit_updated("customer.updated", cust, before)
        for sub in self.engine.subscriptions.list({"customer": customer_id}):
            if sub["default_payment_method"]:
                before = self.engine.render(sub)
                sub["default_payment_method"] = pm["id"]
                self.events.emit_updated("customer.subscription.updated", sub, before)
        return pm

    def check_payment_method(self, pm_id: str, customer_id: str) -> None:
        pm = self.store.get(pm_id, "payment_method", "payment_method")
        if pm["customer"] != customer_id:
            raise invalid(
                f"The PaymentMethod provided ({pm_id}) does not belong to the Customer ({customer_id}).",
                "payment_method",
            )

    def _payment_method_for(self, inv: Obj) -> Obj | None:
        sub_id = (inv["parent"] or {}).get("subscription_details", {}).get("subscription")
        sub = self.store.find(sub_id, "subscription") if sub_id else None
        cust = self.store.get(inv["customer"])
        for pm_id in (
            self._context.payment_method,
            inv["default_payment_method"],
            sub and sub["default_payment_method"],
            cust["invoice_settings"]["default_payment_method"],
        ):
            if pm_id and (pm := self.store.find(pm_id, "payment_method")):
                return pm
        return None

    @contextmanager
    def context(
        self, *, payment_method: str | None = None, off_session: bool = True, customer_present: bool = False
    ) -> Iterator[None]:
        """Charges inside the block use this card, on- or off-session (under the engine lock)."""
        previous = self._context
        self._context = ChargeContext(payment_method, off_session, customer_present)
        try:
            yield
        finally:
            self._context = previous

    # ---------------------------------------------------------------- an invoice's payment
    def open(self, inv: Obj) -> None:
        """At finalization: the PaymentIntent that will collect the invoice, if anything is due.

        SDK docstring of ``InvoicePayment.is_default``: "Stripe automatically creates a default
        InvoicePayment when the invoice is finalized, and keeps it synchronized with the
        invoice's `amount_remaining`."
        """
        if inv["amount_remaining"] <= 0:
            return
        description = _DESCRIPTIONS.get(inv["billing_reason"], f"Invoice {inv['number']}")
        intent = payment_objects.payment_intent(self.now(), inv, description)
        self.store.add("payment_intents", intent)
        self.store.add("invoice_payments", payment_objects.invoice_payment(self.now(), inv, intent))
        inv["confirmation_secret"] = {"client_secret": intent["client_secret"], "type": "payment_intent"}

    def default_payment(self, invoice_id: str) -> Obj | None:
        return next(
            (p for p in self.store.all("invoice_payments") if p["invoice"] == invoice_id and p["is_default"]),
            None,
        )

    def intent_of(self, inv: Obj) -> Obj | None:
        payment = self.default_payment(inv["id"])
        return self.store.get(payment["payment"]["payment_intent"]) if payment else None

    def confirm(self, inv: Obj, *, decline: bool = False) -> str:
        """One payment attempt on the invoice's PaymentIntent; returns its new status."""
        intent = self.intent_of(inv)
        if intent is None:
            self.open(inv)
            intent = self.intent_of(inv)
            assert intent is not None, "an invoice with an amount due has a PaymentIntent"
        intent["amount"] = inv["amount_remaining"]
        pm = self._payment_method_for(inv)
        card = self._cards.get(pm["id"]) if pm else None
        intent["payment_method"] = pm["id"] if pm else None
        if decline or (card is not None and card.declines):
            self._declined(intent, pm)
        elif card is not None and self._needs_authentication(pm, card) and not self._context.customer_present:
            self._requires_action(inv, intent)
        else:
            self._succeeded(inv, intent, pm)
        status: str = intent["status"]
        return status

    def _needs_authentication(self, pm: Obj | None, card: CardRules) -> bool:
        if card.authentication == "always":
            return True
        if card.authentication == "unless_set_up":
            return not (self._context.off_session and pm is not None and pm["id"] in self._set_up)
        return False

    def _declined(self, intent: Obj, pm: Obj | None) -> None:
        error = card_declined()
        failure = {"code": error.code, "decline_code": error.decline_code, "message": error.message}
        ch = payment_objects.charge(self.now(), intent, pm, failure)
        self.store.add("charges", ch)
        intent.update(status=DECLINED, latest_charge=ch["id"], next_action=None)
        intent["last_payment_error"] = {
            "advice_code": "try_again_later",
            "charge": ch["id"],
            "code": error.code,
            "decline_code": error.decline_code,
            "doc_url": "https://stripe.com/docs/error-codes/card-declined",
            "message": error.message,
            "payment_method": self.engine.render(pm) if pm else None,
            "type": "card_error",
        }

    def _requires_action(self, inv: Obj, intent: Obj) -> None:
        # What Stripe.js (handleNextAction) would use; the emulator's hosted invoice page
        # is where a customer completes the challenge.
        intent.update(status=REQUIRES_ACTION, last_payment_error=None)
        intent["next_action"] = {
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {
                "type": "three_d_secure_redirect",
                "source": new_id("src_"),
                "stripe_js": f"{self.engine.base_url()}/invoice/{inv['id']}",
            },
        }

    def _succeeded(self, inv: Obj, intent: Obj, pm: Obj | None) -> None:
        ch = payment_objects.charge(self.now(), intent, pm, None)
        self.store.add("charges", ch)
        intent.update(
            status=SUCCEEDED,
            amount_received=intent["amount"],
            latest_charge=ch["id"],
            last_payment_error=None,
            next_action=None,
        )
        payment = self.default_payment(inv["id"])
        if payment is not None:
            payment.update(status="paid", amount_paid=intent["amount"])
            payment["status_transitions"]["paid_at"] = self.now()

    def needs_action(self, inv: Obj) -> bool:
        intent = self.intent_of(inv)
        return intent is not None and intent["status"] == REQUIRES_ACTION

    def amount_changed(self, inv: Obj) -> None:
        """A pre-payment credit note lowered what the invoice still asks for."""
        intent, payment = self.intent_of(inv), self.default_payment(inv["id"])
        if intent is None or payment is None or intent["status"] == SUCCEEDED:
            return
        intent["amount"] = payment["amount_requested"] = inv["amount_remaining"]

    def cancel(self, inv: Obj, *, remove: bool = False) -> None:
        """The invoice was voided (or paid outside Stripe): its open payment is canceled."""
        payment = self.default_payment(inv["id"])
        if payment is None:
            return
        intent = self.store.get(payment["payment"]["payment_intent"])
        if remove:
            self.store.remove("invoice_payments", payment["id"])
            self.store.remove("payment_intents", intent["id"])
            return
        if intent["status"] == SUCCEEDED:
            return
        intent.update(status="canceled", canceled_at=self.now(), next_action=None)
        intent["cancellation_reason"] = "void_invoice" if inv["status"] == "void" else "automatic"
        payment["status"] = "canceled"
        payment["status_transitions"]["canceled_at"] = self.now()

    def incomplete_error(self, inv: Obj, *, subscription: bool) -> StripeApiError:
        """The 402 an API call answers when the invoice it charged stays unpaid."""
        if not self.needs_action(inv):
            return card_declined()
        if subscription:
            # Stripe's answer to payment_behavior=error_if_incomplete when the bank asks for 3DS
            # (docs.stripe.com/billing/subscriptions/overview#requires-action)
            return StripeApiError(
                "Payment for this subscription requires additional user action before it can be "
                "completed successfully. Payment can be completed using the PaymentIntent associated "
                "with `subscription.latest_invoice`. Additional information is available here: "
                "https://stripe.com/docs/billing/subscriptions/overview#requires-action",
                status=402,
                type="card_error",
                code="subscription_payment_intent_requires_action",
            )
        # The error code is in the SDK's list of codes (_invoice.py LastFinalizationError.code).
        return StripeApiError(
            "This payment requires additional user action before it can be completed successfully. "
            "Payment can be completed using the PaymentIntent associated with the invoice.",
            status=402,
            type="card_error",
            code="invoice_payment_intent_requires_action",
        )

    # ---------------------------------------------------------------- the hosted invoice page
    def pay_on_hosted_page(self, invoice_id: str, card: str | None) -> Obj:
        """The customer pays on the invoice's page, with a new ``card`` or the one on file.

        On-session, with the customer there to complete 3-D Secure: Stripe support,
        "Completing a next action for PaymentIntents created with one-off invoices": "the
        hosted_invoice_url ... contains a button for the customer to complete the payment."
        A decline leaves the invoice open (the page says so); other errors propagate.
        """
        inv = self.store.get(invoice_id, "invoice")
        params: Obj = {"off_session": False}
        if card is not None:
            params["payment_method"] = self.attach_card(inv["customer"], card, set_up_off_session=False)["id"]
        try:
            self.engine.invoices.pay(invoice_id, params, customer_present=True)
        except StripeApiError as exc:
            if exc.type != "card_error":
                raise
        return inv

    def authenticate_invoice(self, invoice_id: str) -> Obj:
        inv = self.store.get(invoice_id, "invoice")
        if not self.needs_action(inv):
            raise invalid(f"The payment of invoice {invoice_id} is not waiting for authentication.")
        return self.pay_on_hosted_page(invoice_id, None)

    # ---------------------------------------------------------------- refunds
    def paid_charge(self, inv: Obj) -> Obj | None:
        intent = self.intent_of(inv)
        if intent is None or intent["status"] != SUCCEEDED:
            return None
        return self.store.get(intent["latest_charge"])

    def refund(self, ch: Obj, amount: int, reason: str | None = None) -> Obj:
        """Move `amount` back to the card; the caller checked the limit (refunds.check_refundable)."""
        re = payment_objects.refund(self.now(), ch, amount, reason)
        self.store.add("refunds", re)
        ch["amount_refunded"] += amount
        ch["refunded"] = ch["amount_refunded"] == ch["amount"]
        return re

    # ---------------------------------------------------------------- reading
    def list_invoice_payments(self, p: Obj) -> Objs:
        wanted = p.get("payment") or {}

        def matches(ip: Obj) -> bool:
            payment = ip["payment"]
            return (
                ("invoice" not in p or ip["invoice"] == p["invoice"])
                and ("status" not in p or ip["status"] == p["status"])
                and all(payment.get(k) == v for k, v in wanted.items())
                and created_matches(ip["created"], p.get("created"))
            )

        return [ip for ip in self.store.all("invoice_payments") if matches(ip)]

    def expanded_payments(self, invoice_id: str) -> Obj:
        """``invoice.payments``, which Stripe only includes when asked (``expand[]=payments``).

        SDK docstring of InvoicePayment: "Invoice Payments can be accessed in two ways: 1. By
        expanding the `payments` field on the Invoice resource. 2. By using the Invoice Payment
        retrieve and list endpoints."
        """
        data = [self.engine.render(ip) for ip in self.list_invoice_payments({"invoice": invoice_id})]
        return {
            "object": "list",
            "data": list(reversed(data)),
            "has_more": False,
            "total_count": len(data),
            "url": f"/v1/invoices/{invoice_id}/payments",
        }
