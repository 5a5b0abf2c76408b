"""Customers and their tax ids (``/v1/customers``, ``/v1/customers/{id}/tax_ids``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import objects
from .errors import missing
from .resource import Obj, Objs, Resource, merge_metadata
from .store import created_matches

if TYPE_CHECKING:
    from .engine import Engine


class Customers(Resource):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        # Deleted customers, by id: still retrievable, refused everywhere else.
        self.deleted: dict[str, Obj] = {}

    def create(self, p: Obj) -> Obj:
        cust = objects.customer(self.now(), p)
        cust["metadata"] = merge_metadata({}, p.get("metadata"))
        self.store.add("customers", cust)
        for tax in p.get("tax_id_data") or []:
            self.add_tax_id(cust["id"], tax["type"], tax["value"], emit=False)
        self.events.emit("customer.created", cust)
        return cust

    def update(self, customer_id: str, p: Obj) -> Obj:
        cust = self.store.get(customer_id, "customer")
        before = self.engine.render(cust)
        for key in ("email", "name", "description", "phone", "address", "tax_exempt"):
            if key in p:
                cust[key] = p[key] or None
        if "preferred_locales" in p:
            cust["preferred_locales"] = p["preferred_locales"] or []
        if "invoice_settings" in p:
            cust["invoice_settings"].update({k: v or None for k, v in p["invoice_settings"].items()})
        if "balance" in p:
            cust["balance"] = p["balance"]
        if "metadata" in p:
            cust["metadata"] = merge_metadata(cust["metadata"], p["metadata"])
        self.events.emit_updated("customer.updated", cust, before)
        return cust

    def retrieve(self, customer_id: str) -> Obj:
        if customer_id in self.deleted:
            return dict(self.deleted[customer_id])
        return self.store.get(customer_id, "customer")

    def delete(self, customer_id: str) -> Obj:
        """``DELETE /v1/customers/{id}``: cancel its live subscriptions now, then forget it.

        Stripe docs: API reference, "Delete a customer" (docs.stripe.com/api/customers/delete):
        "Permanently deletes a customer. It cannot be undone. Also immediately cancels any
        active subscriptions on the customer." Deleted customers "can still be retrieved
        through the API", answering ``{id, object: customer, deleted: true}``, and deleting
        "prevents any further operations": here every other use is "No such customer".
        """
        cust = self.store.get(customer_id, "customer")
        subscriptions = self.engine.subscriptions
        for sub in subscriptions.list({"customer": customer_id}):
            subscriptions.end(sub, "canceled")
        tombstone = {"id": customer_id, "object": "customer", "deleted": True}
        self.events.emit("customer.deleted", cust)
        self.store.remove("customers", customer_id)
        self.deleted[customer_id] = tombstone
        return dict(tombstone)

    def list(self, p: Obj) -> Objs:
        return [
            c
            for c in self.store.all("customers")
            if ("email" not in p or c["email"] == p["email"])
            and created_matches(c["created"], p.get("created"))
        ]

    # ---------------------------------------------------------------- tax ids
    def add_tax_id(self, customer_id: str, type_: str, value: str, emit: bool = True) -> Obj:
        tax = objects.tax_id(self.now(), customer_id, type_, value)
        self.store.add("tax_ids", tax)
        if emit:
            self.events.emit("customer.tax_id.created", tax)
        return tax

    def create_tax_id(self, customer_id: str, p: Obj) -> Obj:
        self.store.get(customer_id, "customer")
        return self.add_tax_id(customer_id, p["type"], p["value"])

    def list_tax_ids(self, customer_id: str) -> Objs:
        self.store.get(customer_id, "customer")
        return [t for t in self.store.all("tax_ids") if t["customer"] == customer_id]

    def delete_tax_id(self, customer_id: str, tax_id: str) -> Obj:
        tax = self.store.get(tax_id, "tax_id")
        if tax["customer"] != customer_id:
            raise missing("tax_id", tax_id)
        self.store.remove("tax_ids", tax_id)
        self.events.emit("customer.tax_id.deleted", tax)
        return {"id": tax_id, "object": "tax_id", "deleted": True}
