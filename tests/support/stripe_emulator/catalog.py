"""Products and prices (``/v1/products``, ``/v1/prices``), lookup keys included."""

from __future__ import annotations

from . import objects
from .errors import invalid, missing_param
from .resource import Obj, Objs, Resource, merge_metadata
from .store import created_matches


class Catalog(Resource):
    # ---------------------------------------------------------------- products
    def create_product(self, p: Obj) -> Obj:
        if p.get("id") and p["id"] in self.store.objects:
            raise invalid("Product already exists.", "id", "resource_already_exists")
        prod = objects.product(self.now(), p)
        prod["metadata"] = merge_metadata({}, p.get("metadata"))
        self.store.add("products", prod)
        self.events.emit("product.created", prod)
        if p.get("default_price_data"):
            price = self.create_price({**p["default_price_data"], "product": prod["id"]})
            prod["default_price"] = price["id"]
        return prod

    def update_product(self, product_id: str, p: Obj) -> Obj:
        prod = self.store.get(product_id, "product")
        before = self.engine.render(prod)
        for key in ("name", "active", "description", "default_price", "url", "unit_label"):
            if key in p:
                prod[key] = p[key] if p[key] != "" else None
        if "metadata" in p:
            prod["metadata"] = merge_metadata(prod["metadata"], p["metadata"])
        prod["updated"] = self.now()
        self.events.emit_updated("product.updated", prod, before)
        return prod

    def list_products(self, p: Obj) -> Objs:
        ids = set(p.get("ids") or [])
        return [
            x
            for x in self.store.all("products")
            if ("active" not in p or x["active"] == p["active"]) and (not ids or x["id"] in ids)
        ]

    def product_name(self, price: Obj) -> str:
        name: str = self.store.get(price["product"])["name"]
        return name

    # ---------------------------------------------------------------- prices
    def create_price(self, p: Obj) -> Obj:
        if "product" not in p and "product_data" not in p:
            raise missing_param("product")
        if p.get("unit_amount") is None and p.get("unit_amount_decimal") is None:
            raise missing_param("unit_amount")
        if "product" in p:
            product_id = self.store.get(p["product"], "product", "product")["id"]
        if p.get("lookup_key"):
            self._claim_lookup_key(p["lookup_key"], p.get("transfer_lookup_key", False), None)
        if "product_data" in p:  # only create side effects once everything validated
            product_id = self.create_product(p["product_data"])["id"]
        price = objects.price(self.now(), p, product_id)
        price["metadata"] = merge_metadata({}, p.get("metadata"))
        self.store.add("prices", price)
        self.events.emit("price.created", price)
        return price

    def update_price(self, price_id: str, p: Obj) -> Obj:
        price = self.store.get(price_id, "price")
        before = self.engine.render(price)
        if "lookup_key" in p:
            if p["lookup_key"]:
                self._claim_lookup_key(p["lookup_key"], p.get("transfer_lookup_key", False), price_id)
            price["lookup_key"] = p["lookup_key"] or None
        for key in ("active", "nickname", "tax_behavior"):
            if key in p:
                price[key] = p[key] if p[key] != "" else None
        if "metadata" in p:
            price["metadata"] = merge_metadata(price["metadata"], p["metadata"])
        self.events.emit_updated("price.updated", price, before)
        return price

    def list_prices(self, p: Obj) -> Objs:
        keys = p.get("lookup_keys")
        recurring = p.get("recurring") or {}
        return [
            x
            for x in self.store.all("prices")
            if ("active" not in p or x["active"] == p["active"])
            and ("product" not in p or x["product"] == p["product"])
            and ("currency" not in p or x["currency"] == p["currency"])
            and ("type" not in p or x["type"] == p["type"])
            and (not keys or x["lookup_key"] in keys)
            and (
                "interval" not in recurring or (x["recurring"] or {}).get("interval") == recurring["interval"]
            )
            and created_matches(x["created"], p.get("created"))
        ]

    def _claim_lookup_key(self, key: str, transfer: bool, owner: str | None) -> None:
        holder = next((x for x in self.store.all("prices") if x["lookup_key"] == key), None)
        if holder is None or holder["id"] == owner:
            return
        if not transfer:
            raise invalid(f"A price (`{holder['id']}`) already uses that lookup key.", "lookup_key")
        before = self.engine.render(holder)
        holder["lookup_key"] = None
        self.events.emit_updated("price.updated", holder, before)
