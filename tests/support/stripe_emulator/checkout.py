"""Checkout Sessions (``/v1/checkout/sessions``) and paying one as a customer would."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from . import objects
from .errors import invalid, missing_param
from .payments import DEFAULT_CARD, known_card
from .resource import Obj, Objs, Resource
from .subscriptions import check_intervals

if TYPE_CHECKING:
    from .engine import Engine


class CheckoutSessions(Resource):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        # Line items and subscription_data, which the session object omits (Stripe
        # exposes them via /line_items or expand[]).
        self._extras: dict[str, Obj] = {}

    def create(self, p: Obj) -> Obj:
        mode = p.get("mode")
        if mode is None:
            raise missing_param("mode")
        if mode != "subscription":
            raise invalid(f"The emulator only implements mode=subscription, got {mode}.", "mode")
        self._check_times(p)
        if p.get("customer"):
            self.store.get(p["customer"], "customer", "customer")
        line_items = p.get("line_items") or []
        if not line_items:
            raise missing_param("line_items")
        resolved = []
        for i, li in enumerate(line_items):
            if "price" not in li:
                raise missing_param(f"line_items[{i}][price]")
            price = self.store.get(li["price"], "price", f"line_items[{i}][price]")
            if not price["active"]:
                raise invalid(f"The price specified ({price['id']}) is inactive.", f"line_items[{i}][price]")
            resolved.append({"price": price["id"], "quantity": li.get("quantity", 1)})
        prices = [self.store.get(li["price"]) for li in resolved]
        if not any(price["type"] == "recurring" for price in prices):
            raise invalid(
                "You must provide at least one recurring price in `subscription` mode when using prices.",
                "line_items",
            )
        check_intervals(prices, "line_items")
        session = objects.checkout_session(self.now(), p, self.engine.base_url())
        total = sum(price["unit_amount"] * li["quantity"] for price, li in zip(prices, resolved, strict=True))
        session.update(currency=prices[0]["currency"], amount_subtotal=total, amount_total=total)
        self.store.add("checkout_sessions", session)
        self._extras[session["id"]] = {
            "line_items": resolved,
            "subscription_data": p.get("subscription_data") or {},
        }
        return session

    def _check_times(self, p: Obj) -> None:
        """The timestamps a session may carry, measured against the emulator's clock."""
        now = self.now()
        # SDK docstring of `expires_at`: "It can be anywhere from 30 minutes to 24 hours
        # after Checkout Session creation."
        expires_at = p.get("expires_at")
        if expires_at is not None and not now + 30 * 60 <= expires_at <= now + 24 * 3600:
            raise invalid(
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from now.",
                "expires_at",
            )
        # SDK docstring of `subscription_data.trial_end`: "Has to be at least 48 hours in
        # the future."
        trial_end = (p.get("subscription_data") or {}).get("trial_end")
        if trial_end is not None and trial_end < now + 48 * 3600:
            raise invalid(
                "`subscription_data[trial_end]` must be at least 48 hours in the future.",
                "subscription_data[trial_end]",
            )

    def line_items(self, session_id: str) -> Objs:
        self.store.get(session_id, "checkout.session")
        out: Objs = []
        for li in self._extras[session_id]["line_items"]:
            price = self.store.get(li["price"])
            amount = price["unit_amount"] * li["quantity"]
            out.append(
                {
                    "id": f"li_{session_id[-16:]}{len(out)}",
                    "object": "item",
                    "amount_discount": 0,
                    "amount_subtotal": amount,
                    "amount_tax": 0,
                    "amount_total": amount,
                    "currency": price["currency"],
                    "description": self.engine.catalog.product_name(price),
                    "price": copy.deepcopy(price),
                    "quantity": li["quantity"],
                }
            )
        return out

    def list(self, p: Obj) -> Objs:
        return [
            s
            for s in self.store.all("checkout_sessions")
            if all(s.get(k) == p[k] for k in ("customer", "status", "subscription") if k in p)
        ]

    def expire(self, session_id: str) -> Obj:
        session = self.store.get(session_id, "checkout.session")
        if session["status"] != "open":
            raise invalid(
                f'Only Checkout Sessions with a status in ["open"] can be expired. '
                f'This Checkout Session has a status of "{session["status"]}".'
            )
        session["status"] = "expired"
        self.events.emit("checkout.session.expired", session)
        return session

    def complete(
        self,
        session_id: str,
        *,
        payment_fails: bool = False,
        email: str | None = None,
        name: str | None = None,
        tax_id: tuple[str, str] | None = None,
        card: str = DEFAULT_CARD,
    ) -> Obj:
        """What the hosted page does on "Pay": see :meth:`StripeEmulator.complete_checkout`."""
        session = self.store.get(session_id, "checkout.session")
        if session["status"] != "open":
            raise invalid(f"Checkout session {session_id} is {session['status']}, not open.")
        known_card(card)
        customers = self.engine.customers
        extras = self._extras[session_id]
        if session["customer"]:
            cust = self.store.get(session["customer"])
        else:
            email = email or session["customer_email"] or "customer@example.com"
            cust = customers.create({"email": email, "name": name})
        if tax_id and session["tax_id_collection"]["enabled"]:
            customers.add_tax_id(cust["id"], tax_id[0], tax_id[1])
        data = extras["subscription_data"]
        payer = f"checkout:{session_id}"
        if payment_fails:
            self.engine.invoices.declines[payer] = 1
        payments = self.engine.payments
        # In subscription mode Checkout saves the card for the renewals Stripe will charge
        # off-session, as the subscription's default_payment_method; the customer is on the
        # page for the first payment and completes 3-D Secure there if the bank asks.
        pm = payments.attach_card(cust["id"], card, set_up_off_session=True)
        with payments.context(off_session=False, customer_present=True):
            sub, inv = self.engine.subscriptions.start(
                cust,
                extras["line_items"],
                metadata=data.get("metadata") or {},
                trial_days=data.get("trial_period_days"),
                trial_end=data.get("trial_end"),
                description=data.get("description"),
                fail_key=payer,
                default_payment_method=pm["id"],
            )
        session["customer_details"] = {
            "address": None,
            "email": cust["email"],
            "name": cust["name"],
            "phone": None,
            "tax_exempt": cust["tax_exempt"],
            "tax_ids": [{"type": t["type"], "value": t["value"]} for t in customers.list_tax_ids(cust["id"])],
        }
        session["customer"] = cust["id"]
        session["subscription"] = sub["id"]
        session["invoice"] = inv["id"]
        if inv["status"] == "paid":
            session["status"] = "complete"
            session["payment_status"] = "paid" if inv["amount_due"] else "no_payment_required"
            self.events.emit("checkout.session.completed", session)
        return session
