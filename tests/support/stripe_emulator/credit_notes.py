"""Credit notes (``/v1/credit_notes``) and the refunds they make.

Stripe docs, API reference "Create a credit note" (2025-11-17.clover, the same text as the
SDK's ``CreditNoteService.create`` docstring): "A credit note will first reduce the
invoice's `amount_remaining` (and `amount_due`), but not below zero. This amount is
indicated by the credit note's `pre_payment_amount`. The excess amount is indicated by
`post_payment_amount`, and it can result in any combination of the following: Refunds
(`refund_amount`) ... Customer balance credit (`credit_amount`) ... Outside of Stripe
credit (`out_of_band_amount`). The sum of refunds, customer balance credits, and outside
of Stripe credits must equal the `post_payment_amount`."

Every rule is checked before anything changes (:meth:`CreditNotes._draft`), which also
serves ``GET /v1/credit_notes/preview``.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import payment_objects
from .errors import invalid, missing_param
from .invoices import subscription_of
from .refunds import check_refundable
from .resource import Obj, Objs, Resource, merge_metadata
from .store import created_matches


@dataclass
class _Draft:
    inv: Obj
    note: Obj  # complete, not yet stored
    refund: int
    credit: int
    charge: Obj | None  # the invoice's charge, when something is refunded


class CreditNotes(Resource):
    # ---------------------------------------------------------------- API
    def create(self, p: Obj) -> Obj:
        draft = self._draft(p)
        inv, note = draft.inv, draft.note
        pre, post = note["pre_payment_amount"], note["post_payment_amount"]
        inv["amount_due"] -= pre
        inv["amount_remaining"] -= pre
        inv["pre_payment_credit_notes_amount"] += pre
        inv["post_payment_credit_notes_amount"] += post
        self.engine.payments.amount_changed(inv)
        refund = None
        if draft.refund and draft.charge is not None:
            refund = self.engine.payments.refund(draft.charge, draft.refund)
            note["refunds"] = [
                {
                    "amount_refunded": draft.refund,
                    "payment_record_refund": None,
                    "refund": refund["id"],
                    "type": "refund",
                }
            ]
        if draft.credit:
            note["customer_balance_transaction"] = self._credit_balance(inv, note, draft.credit)
        self.store.add("credit_notes", note)
        self.events.emit("credit_note.created", note)
        if refund is not None and draft.charge is not None:
            self.events.emit("refund.created", refund)
            self.events.emit("charge.refunded", draft.charge)
        if pre and inv["status"] == "open" and inv["amount_remaining"] == 0:
            self._settled_by_credit(inv)
        return note

    def preview(self, p: Obj) -> Obj:
        return self._draft(p).note

    def list(self, p: Obj) -> Objs:
        return [
            n
            for n in self.store.all("credit_notes")
            if ("invoice" not in p or n["invoice"] == p["invoice"])
            and ("customer" not in p or n["customer"] == p["customer"])
            and created_matches(n["created"], p.get("created"))
        ]

    # ---------------------------------------------------------------- rules
    def _draft(self, p: Obj) -> _Draft:
        inv = self.store.get(p["invoice"], "invoice", "invoice")
        # Stripe docs: "Generate credit notes programmatically": "To adjust the balance of an
        # open or paid invoice, generate a credit note." Drafts and void invoices have none.
        if inv["status"] not in ("open", "paid"):
            raise invalid(
                f"You can only issue a credit note for an open or paid invoice; {inv['id']} is "
                f"{inv['status']}.",
                "invoice",
            )
        for unsupported, why in (
            ("shipping_cost", "the emulator's invoices carry no shipping"),
            ("refunds", "the emulator does not link existing refunds; use `refund_amount`"),
        ):
            if unsupported in p:
                raise invalid(f"`{unsupported}` is not supported: {why}.", unsupported)
        # SDK docstring of `amount` and `lines`: "One of `amount`, `lines`, or `shipping_cost`
        # must be provided." Both at once are refused (the total would be given twice).
        if "amount" in p and "lines" in p:
            raise invalid(
                "You may only specify one of these parameters: amount, lines.",
                "amount",
                code="parameters_exclusive",
            )
        if "amount" not in p and "lines" not in p:
            raise missing_param("amount")
        lines = self._lines(inv, p["lines"]) if "lines" in p else []
        total = p["amount"] if "amount" in p else sum(line["amount"] for line in lines)
        if total <= 0:
            raise invalid("The credit note's total must be a positive amount.", "amount")
        creditable = inv["total"] - self._credited(inv["id"])
        if total > creditable:
            raise invalid(
                f"The credit note's total ({total}) is greater than what is left to credit on "
                f"invoice {inv['id']} ({creditable}).",
                "amount" if "amount" in p else "lines",
            )
        pre = min(total, inv["amount_remaining"]) if inv["status"] == "open" else 0
        post = total - pre
        refund, credit = p.get("refund_amount", 0), p.get("credit_amount", 0)
        out_of_band = p.get("out_of_band_amount")
        allocated = refund + credit + (out_of_band or 0)
        # Stripe changelog 2019-12-03 ("New requirement for out_of_band_amount when creating
        # post-payment credit notes"): the difference is no longer allocated automatically.
        if allocated != post:
            raise invalid(
                f"The sum of refund_amount, credit_amount and out_of_band_amount ({allocated}) must "
                f"equal the credit note's post-payment amount ({post}).",
                "out_of_band_amount" if allocated < post else None,
            )
        charge = self._refundable_charge(inv, refund) if refund else None
        note = payment_objects.credit_note(self.now(), inv, self._number(inv), self.engine.base_url())
        note.update(
            amount=total,
            subtotal=total,
            subtotal_excluding_tax=total,
            total=total,
            total_excluding_tax=total,
            pre_payment_amount=pre,
            post_payment_amount=post,
            type="pre_payment" if not post else "post_payment" if not pre else "mixed",
            out_of_band_amount=out_of_band,
            memo=p.get("memo"),
            reason=p.get("reason"),
            effective_at=p.get("effective_at", self.now()),
            metadata=merge_metadata({}, p.get("metadata")),
        )
        note["lines"]["data"] = lines
        note["lines"]["total_count"] = len(lines)
        return _Draft(inv, note, refund, credit, charge)

    def _lines(self, inv: Obj, items: Objs) -> Objs:
        by_id = {line["id"]: line for line in inv["lines"]["data"]}
        out = []
        for n, item in enumerate(items):
            param = f"lines[{n}]"
            if item["type"] == "custom_line_item":
                out.append(self._custom_line(item, param))
                continue
            if "invoice_line_item" not in item:
                raise missing_param(f"{param}[invoice_line_item]")
            line = by_id.get(item["invoice_line_item"])
            if line is None:
                raise invalid(
                    f"Invoice line item {item['invoice_line_item']} does not belong to invoice {inv['id']}.",
                    f"{param}[invoice_line_item]",
                )
            # Stripe docs, "Generate credit notes programmatically": "You can't combine
            # discount types on an invoice line item": an amount or a quantity, not both.
            if ("amount" in item) == ("quantity" in item):
                raise invalid(
                    f"Give exactly one of {param}[amount] and {param}[quantity].", f"{param}[amount]"
                )
            unit = int(line["pricing"]["unit_amount_decimal"])
            amount = item["amount"] if "amount" in item else unit * item["quantity"]
            left = line["amount"] - self._credited_line(line["id"])
            if amount > left:
                raise invalid(
                    f"{param} credits {amount}, more than is left to credit on line {line['id']} ({left}).",
                    f"{param}[amount]",
                )
            out.append(
                payment_objects.credit_note_line(
                    kind="invoice_line_item",
                    amount=amount,
                    description=line["description"],
                    quantity=item.get("quantity"),
                    unit_amount=unit if "quantity" in item else None,
                    invoice_line_item=line["id"],
                )
            )
        return out

    @staticmethod
    def _custom_line(item: Obj, param: str) -> Obj:
        if "invoice_line_item" in item or "amount" in item:
            raise invalid(
                f"{param}: `invoice_line_item` and `amount` are only valid for type invoice_line_item.",
                param,
            )
        if "unit_amount" in item and "unit_amount_decimal" in item:
            raise invalid(
                "Only one of `unit_amount` and `unit_amount_decimal` can be set.", f"{param}[unit_amount]"
            )
        unit = item.get("unit_amount")
        if unit is None and "unit_amount_decimal" in item:
            unit = int(item["unit_amount_decimal"])
        if unit is None:
            raise missing_param(f"{param}[unit_amount]")
        quantity = item.get("quantity", 1)
        return payment_objects.credit_note_line(
            kind="custom_line_item",
            amount=unit * quantity,
            description=item.get("description"),
            quantity=quantity,
            unit_amount=unit,
            invoice_line_item=None,
        )

    def _refundable_charge(self, inv: Obj, refund: int) -> Obj:
        charge = self.engine.payments.paid_charge(inv)
        if charge is None:
            raise invalid(
                f"Invoice {inv['id']} has no payment made through Stripe to refund.", "refund_amount"
            )
        check_refundable(charge, refund, "refund_amount")
        return charge

    # ---------------------------------------------------------------- effects
    def _credit_balance(self, inv: Obj, note: Obj, amount: int) -> str:
        """Credit the customer's balance (negative = credit), applied to their next invoice."""
        cust = self.store.get(inv["customer"])
        cust["balance"] -= amount
        txn = payment_objects.customer_balance_transaction(
            self.now(), cust, -amount, inv["currency"], note["id"], inv["id"]
        )
        self.store.add("customer_balance_transactions", txn)
        txn_id: str = txn["id"]
        return txn_id

    def _settled_by_credit(self, inv: Obj) -> None:
        """Credit notes covered everything still due: the invoice is paid, no charge made."""
        inv["status"] = "paid"
        inv["status_transitions"]["paid_at"] = self.now()
        inv["next_payment_attempt"] = None
        self.engine.payments.cancel(inv)
        self.events.emit("invoice.paid", inv)
        sub_id = subscription_of(inv)
        if sub_id:
            self.engine.subscriptions.invoice_paid(self.store.get(sub_id), inv)

    # ---------------------------------------------------------------- helpers
    def _on_invoice(self, invoice_id: str) -> Objs:
        notes = self.store.all("credit_notes")
        return [n for n in notes if n["invoice"] == invoice_id and n["status"] == "issued"]

    def _credited(self, invoice_id: str) -> int:
        return sum(n["total"] for n in self._on_invoice(invoice_id))

    def _credited_line(self, line_id: str) -> int:
        return sum(
            line["amount"]
            for n in self.store.all("credit_notes")
            if n["status"] == "issued"
            for line in n["lines"]["data"]
            if line["invoice_line_item"] == line_id
        )

    def _number(self, inv: Obj) -> str:
        # Stripe numbers a credit note after its invoice: "<invoice number>-CN-01", "-CN-02"...
        return f"{inv['number']}-CN-{len(self._on_invoice(inv['id'])) + 1:02d}"
