"""Customers and their tax ids (``/v1/customers``, ``/v1/customers/{id}/tax_ids``)."""

from __future__ import annotations

from . import objects
from .errors import missing
from .resource import Obj, Objs, Resource, merge_metadata
from .store import created_matches


class Customers(Resource):
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
