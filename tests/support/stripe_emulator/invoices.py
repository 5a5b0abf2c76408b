"""Invoices, their lines, pending invoice items, and the payments that settle them.

``/v1/invoices`` (list, retrieve, pay, create_preview) and ``/v1/invoiceitems``. An invoice
is built as a draft, finalized (numbered, customer balance applied) and charged in
:meth:`Invoices.attempt_payment`; a test can make the next charge fail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import objects
from .clock import format_date, interval_step
from .errors import invalid
from .objects import Charge
from .payments import SUCCEEDED
from .proration import ItemProration
from .resource import Obj, Objs, Resource
from .store import created_matches

if TYPE_CHECKING:
    from .engine import Engine


def subscription_of(inv: Obj) -> str | None:
    sub_id: str | None = (inv["parent"] or {}).get("subscription_details", {}).get("subscription")
    return sub_id


class Invoices(Resource):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        # Charges to decline, by subscription id (or "checkout:<session id>").
        self.declines: dict[str, int] = {}
        # invoice.created / invoice.finalized / invoice.sent snapshots, emitted once the
        # caller is done.
        self._snaps: dict[str, dict[str, Obj]] = {}
        # Sent invoices whose due date has passed unpaid (invoice.overdue was sent).
        self.overdue: set[str] = set()

    # ---------------------------------------------------------------- building
    def build(self, sub: Obj, reason: str, period_start: int) -> Obj:
        cust = self.store.get(sub["customer"])
        inv = objects.invoice(self.now(), cust, sub, reason)
        inv["period_start"] = period_start
        inv["period_end"] = self.now()
        # SDK docstrings: the subscription's invoice_settings.custom_fields are "displayed
        # on the invoice"; the customer's are the "default custom fields to be displayed on
        # invoices for this customer".
        settings = sub["invoice_settings"]
        inv["custom_fields"] = settings.get("custom_fields") or cust["invoice_settings"]["custom_fields"]
        inv["description"] = settings.get("description")
        inv["footer"] = settings.get("footer") or cust["invoice_settings"]["footer"]
        self.store.add("invoices", inv)
        return inv

    @staticmethod
    def _add_line(
        inv: Obj,
        sub: Obj,
        charge: Charge,
        *,
        item_id: str | None,
        proration: bool,
        invoice_item_id: str | None = None,
    ) -> None:
        line = objects.invoice_line(
            charge,
            invoice_id=inv["id"],
            sub_id=sub["id"],
            item_id=item_id,
            proration=proration,
            invoice_item_id=invoice_item_id,
        )
        inv["lines"]["data"].append(line)
        inv["lines"]["total_count"] = len(inv["lines"]["data"])

    def add_period_line(
        self, inv: Obj, sub: Obj, item: Obj, start: int, end: int, *, trial: bool = False
    ) -> None:
        """Bill one subscription item (id, price, quantity) for a whole period."""
        price = self.store.get(item["price"])
        quantity = item["quantity"]
        amount = 0 if trial else price["unit_amount"] * quantity
        label = "Trial period for " if trial else f"{quantity} × "
        description = f"{label}{self.engine.catalog.product_name(price)}"
        charge = Charge(price, amount, quantity, description, start, end)
        self._add_line(inv, sub, charge, item_id=item["id"], proration=False)

    def add_proration_line(self, inv: Obj, sub: Obj, change: ItemProration) -> None:
        self._add_line(inv, sub, self._proration_charge(change), item_id=change.item_id, proration=True)

    def _proration_charge(self, change: ItemProration) -> Charge:
        line = change.line
        name = self.engine.catalog.product_name(change.price)
        what = "Unused time on" if line.unused else "Remaining time on"
        prefix = f"{change.quantity} × " if change.quantity != 1 else ""
        description = f"{what} {prefix}{name} after {format_date(line.start)}"
        return Charge(change.price, line.amount, change.quantity, description, line.start, line.end)

    # ---------------------------------------------------------------- invoice items
    def add_pending_item(self, sub: Obj, change: ItemProration, item_id: str | None, *, emit: bool) -> None:
        """A proration that waits, as an invoice item, for the subscription's next invoice."""
        charge = self._proration_charge(change)
        ii = objects.invoice_item(
            self.now(), charge, customer_id=sub["customer"], sub_id=sub["id"], item_id=item_id
        )
        self.store.add("invoiceitems", ii)
        if emit:
            self.events.emit("invoiceitem.created", ii)

    def pending_items(self, sub_id: str) -> Objs:
        return [
            ii
            for ii in self.store.all("invoiceitems")
            if ii["invoice"] is None and ii["parent"]["subscription_details"]["subscription"] == sub_id
        ]

    def _add_item_line(self, inv: Obj, sub: Obj, ii: Obj) -> None:
        price = self.store.get(ii["pricing"]["price_details"]["price"])
        period = ii["period"]
        charge = Charge(
            price, ii["amount"], ii["quantity"], ii["description"], period["start"], period["end"]
        )
        item_id = ii["parent"]["subscription_details"]["subscription_item"]
        self._add_line(inv, sub, charge, item_id=item_id, proration=ii["proration"], invoice_item_id=ii["id"])

    def sweep_pending(self, inv: Obj, sub: Obj) -> None:
        """Pull the subscription's pending invoice items (prorations) onto this invoice."""
        for ii in self.pending_items(sub["id"]):
            ii["invoice"] = inv["id"]
            self._add_item_line(inv, sub, ii)

    # ---------------------------------------------------------------- finalize and pay
    @staticmethod
    def _total(inv: Obj, cust: Obj) -> int:
        """Set the amounts from the lines; returns the net after the customer's balance."""
        total = sum(line["amount"] for line in inv["lines"]["data"])
        # Customer balance: negative = credit. Credits from prorations carry forward.
        net: int = total + cust["balance"]
        inv.update(
            subtotal=total,
            subtotal_excluding_tax=total,
            total=total,
            total_excluding_tax=total,
            starting_balance=cust["balance"],
            ending_balance=min(net, 0),
            amount_due=max(net, 0),
            amount_remaining=max(net, 0),
        )
        return net

    def _finalize(self, inv: Obj) -> None:
        cust = self.store.get(inv["customer"])
        net = self._total(inv, cust)
        inv.update(
            status="open",
            number=f"{cust['invoice_prefix']}-{cust['next_invoice_sequence']:04d}",
            effective_at=self.now(),
            hosted_invoice_url=f"{self.engine.base_url()}/invoice/{inv['id']}",
            invoice_pdf=f"{self.engine.base_url()}/invoice/{inv['id']}/pdf",
        )
        inv["status_transitions"]["finalized_at"] = self.now()
        cust["next_invoice_sequence"] += 1
        cust["balance"] = min(net, 0)
        self.engine.payments.open(inv)

    def send(self, inv: Obj, days_until_due: int | None) -> bool:
        """``collection_method=send_invoice``: finalize, set the due date and email the
        invoice (``invoice.sent``); nothing is charged. True if nothing was due (a zero
        invoice is paid at finalization, as an automatic one is).

        SDK docstring of ``due_date``: "The date on which payment for this invoice is due.
        This value will be `null` for invoices where `collection_method=charge_automatically`."
        Without ``days_until_due`` the account's default terms apply (30 days).
        """
        if inv["status"] == "draft":
            inv["due_date"] = self.now() + (days_until_due or 30) * 86400
        paid = self.attempt_payment(inv, inv["id"], attempt=False)
        if not paid:
            self._snaps.setdefault(inv["id"], {})["invoice.sent"] = self.engine.render(inv)
        return paid

    def advance_draft(self, inv: Obj) -> None:
        """Automatic advancement (the timeline, at ``automatically_finalizes_at``): a sent
        subscription's draft is finalized and emailed. Its ``invoice.created`` went out
        when it was made."""
        inv["automatically_finalizes_at"] = None
        sub = self.store.get(subscription_of(inv) or "", "subscription")
        paid = self.send(inv, sub["days_until_due"])
        self._snaps.get(inv["id"], {}).pop("invoice.created", None)
        self.emit_outcome(inv, paid, attempted=False)

    def fail_next_payment(self, sub_id: str, times: int = 1) -> None:
        self.store.get(sub_id, "subscription")
        self.declines[sub_id] = self.declines.get(sub_id, 0) + times

    def attempt_payment(self, inv: Obj, fail_key: str, attempt: bool = True) -> bool:
        """Finalize (if draft) and charge. Event snapshots are kept per step so that
        ``invoice.created`` shows a draft and ``invoice.finalized`` an open invoice."""
        snaps = self._snaps.setdefault(inv["id"], {})
        if inv["status"] == "draft":
            snaps["invoice.created"] = self.engine.render(inv)
            self._finalize(inv)
            snaps["invoice.finalized"] = self.engine.render(inv)
        if inv["amount_due"] > 0 and not attempt:
            return False  # default_incomplete: wait for the customer to confirm payment
        if inv["amount_due"] > 0:
            inv["attempted"] = True
            inv["attempt_count"] += 1
            forced = bool(self.declines.get(fail_key))
            if forced:
                self.declines[fail_key] -= 1
            if self.engine.payments.confirm(inv, decline=forced) != SUCCEEDED:
                inv["next_payment_attempt"] = self.engine.retries.schedule(inv)
                return False
        inv.update(status="paid", amount_paid=inv["amount_due"], amount_remaining=0)
        inv["status_transitions"]["paid_at"] = self.now()
        inv["next_payment_attempt"] = None
        return True

    def emit_outcome(self, inv: Obj, paid: bool, attempted: bool = True) -> None:
        # Emitted after the caller's own subscription event, in the order Stripe sends.
        snaps = self._snaps.pop(inv["id"], {})
        for type_ in ("invoice.created", "invoice.finalized", "invoice.sent"):
            if type_ in snaps:
                self.events.emit(type_, inv, snapshot=snaps[type_])
        if not attempted and not paid:
            return
        if paid:
            self.events.emit("invoice.paid", inv)
            self.events.emit("invoice.payment_succeeded", inv)
        else:
            self.emit_failure(inv)

    def emit_failure(self, inv: Obj) -> None:
        self.events.emit("invoice.payment_failed", inv)
        if self.engine.payments.needs_action(inv):
            # Stripe support, "Completing a next action for PaymentIntents created with
            # one-off invoices": "invoice.payment_action_required will be generated when the
            # next action is needed, such as when 3D Secure is required". Stripe docs, "Using
            # webhooks with subscriptions", lists invoice.payment_failed for an attempt whose
            # PaymentIntent moves to requires_action too: both are sent.
            self.events.emit("invoice.payment_action_required", inv)

    def void(self, inv: Obj, emit: bool = True, remove: bool = False) -> None:
        """Void an unpaid invoice (or drop it entirely when the request is rejected)."""
        for ii in self.store.all("invoiceitems"):
            if ii["invoice"] == inv["id"]:
                ii["invoice"] = None
        if inv["ending_balance"] is not None:
            # Give back the customer credit that finalization applied to this invoice.
            cust = self.store.get(inv["customer"])
            cust["balance"] += inv["starting_balance"] - inv["ending_balance"]
        self._snaps.pop(inv["id"], None)
        if remove:
            self.engine.payments.cancel(inv, remove=True)
            self.store.remove("invoices", inv["id"])
            return
        inv["status"] = "void"
        inv["amount_remaining"] = 0
        inv["status_transitions"]["voided_at"] = self.now()
        self.engine.payments.cancel(inv)
        if emit:
            self.events.emit("invoice.voided", inv)

    def pay(self, invoice_id: str, p: Obj, *, customer_present: bool = False) -> Obj:
        """``POST /v1/invoices/{id}/pay``; with ``customer_present``, the hosted invoice page's
        button (on-session, 3-D Secure completed if the bank asks for it)."""
        inv = self.store.get(invoice_id, "invoice")
        if inv["status"] == "paid":
            raise invalid("Invoice is already paid", code="invoice_already_paid")
        if inv["status"] != "open":
            raise invalid(f"You cannot pay an invoice with status {inv['status']}.")
        sub_id = subscription_of(inv)
        payments = self.engine.payments
        if p.get("payment_method"):
            payments.check_payment_method(p["payment_method"], inv["customer"])
        if p.get("paid_out_of_band"):
            paid = True
            inv.update(status="paid", amount_paid=0, amount_remaining=0)
            inv["status_transitions"]["paid_at"] = self.now()
            inv["next_payment_attempt"] = None
            payments.cancel(inv)
        else:
            with payments.context(
                payment_method=p.get("payment_method"),
                off_session=p.get("off_session", True),
                customer_present=customer_present,
            ):
                paid = self.attempt_payment(inv, sub_id or inv["id"])
        if not paid:
            self.emit_failure(inv)
            raise payments.incomplete_error(inv, subscription=False)
        self.events.emit("invoice.paid", inv)
        self.events.emit("invoice.payment_succeeded", inv)
        if sub_id:
            self.engine.subscriptions.invoice_paid(self.store.get(sub_id), inv)
        return inv

    # ---------------------------------------------------------------- reading
    def list(self, p: Obj) -> Objs:
        return [
            i
            for i in self.store.all("invoices")
            if ("customer" not in p or i["customer"] == p["customer"])
            and ("subscription" not in p or subscription_of(i) == p["subscription"])
            and ("status" not in p or i["status"] == p["status"])
            and created_matches(i["created"], p.get("created"))
        ]

    def list_items(self, p: Obj) -> Objs:
        return [
            ii
            for ii in self.store.all("invoiceitems")
            if ("customer" not in p or ii["customer"] == p["customer"])
            and ("pending" not in p or (ii["invoice"] is None) == p["pending"])
            and ("invoice" not in p or ii["invoice"] == p["invoice"])
        ]

    def preview(self, p: Obj) -> Obj:
        """``POST /v1/invoices/create_preview``: what a change would bill, without applying it."""
        if "subscription" not in p:
            raise invalid("The emulator only previews changes to an existing subscription.", "subscription")
        sub = self.store.get(p["subscription"], "subscription", "subscription")
        if "customer" in p and p["customer"] != sub["customer"]:
            raise invalid("The subscription does not belong to this customer.", "customer")
        details = p.get("subscription_details") or {}
        keys = ("items", "proration_date", "proration_behavior", "billing_cycle_anchor")
        plan = self.engine.changes.plan(sub, {k: details[k] for k in keys if k in details})
        cust = self.store.get(sub["customer"])
        inv = objects.invoice(self.now(), cust, sub, "upcoming")
        inv["id"] = "upcoming_" + inv["id"]
        inv["lines"]["url"] = f"/v1/invoices/{inv['id']}/lines"
        for change in plan.prorations:
            self.add_proration_line(inv, sub, change)
        for ii in self.pending_items(sub["id"]):
            self._add_item_line(inv, sub, ii)
        immediate = plan.invoice_now or plan.proration_behavior == "always_invoice"
        if plan.reset or not immediate:
            # The next regular invoice also bills the coming period on the new price.
            interval, count = plan.interval
            start = self.now() if plan.reset else sub["current_period_end"]
            end = interval_step(start, interval, count, 1)
            for new in plan.items:
                self.add_period_line(inv, sub, new, start, end)
        self._total(inv, cust)
        if immediate:
            inv["billing_reason"] = "subscription_update"
        else:
            inv["period_start"] = sub["current_period_start"]
            inv["period_end"] = sub["current_period_end"]
            inv["created"] = sub["current_period_end"]
        return inv
