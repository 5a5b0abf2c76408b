"""The stateful core: catalog, customers, checkout, subscriptions, invoices, events.

Every public method runs under one re-entrant lock and returns the *stored* objects;
:meth:`Engine.render` produces the JSON shape (with nested prices etc.). Events are
snapshots rendered at emission time and handed to the webhook dispatcher, which never
blocks, so the lock is never held while a receiver is being called.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

from . import objects
from .clock import Clock, format_date, interval_step, next_period_end
from .errors import StripeApiError, card_declined, invalid, missing
from .proration import ProratedLine, charge_remaining, credit_unused
from .store import Store, created_matches

# Stripe lets an incomplete subscription's first invoice be paid for 23 hours.
INCOMPLETE_WINDOW = 23 * 3600
ENDED = ("canceled", "incomplete_expired")
_UNSET: Any = object()
SUBSCRIPTION_STATUSES = (
    "active",
    "past_due",
    "unpaid",
    "canceled",
    "incomplete",
    "incomplete_expired",
    "trialing",
    "paused",
)


def merge_metadata(current: dict[str, str], update: Any) -> dict[str, str]:
    """Stripe metadata semantics: ``""`` clears all keys, an empty value unsets one key."""
    if update == "":
        return {}
    merged = dict(current)
    for key, value in (update or {}).items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


class Engine:
    def __init__(
        self,
        clock: Clock,
        submit_event: Callable[[dict[str, Any]], None],
        base_url: Callable[[], str],
        api_version: str,
    ) -> None:
        self.lock = threading.RLock()
        self.store = Store()
        self.clock = clock
        self._submit = submit_event
        self._base_url = base_url
        self.api_version = api_version
        self._fail_next: dict[str, int] = {}
        # sub id -> (planned change, invoice id) for payment_behavior=pending_if_incomplete
        self._pending_changes: dict[str, tuple[dict[str, Any], str]] = {}
        self._request = threading.local()
        # Checkout line items and subscription_data, which the session object omits.
        self._session_extras: dict[str, dict[str, Any]] = {}
        self._invoice_snaps: dict[str, dict[str, dict[str, Any]]] = {}

    # ================================================================ plumbing
    def set_request(self, request_id: str | None, idempotency_key: str | None) -> None:
        self._request.value = {"id": request_id, "idempotency_key": idempotency_key}

    def now(self) -> int:
        return self.clock.now()

    def render(self, obj: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        if out.get("object") == "subscription":
            for item in out["items"]["data"]:
                item["price"] = copy.deepcopy(self.store.get(item["price"]))
        return out

    def emit(
        self,
        type_: str,
        obj: dict[str, Any],
        previous: dict[str, Any] | None = None,
        snapshot: dict[str, Any] | None = None,
    ) -> None:
        request = getattr(self._request, "value", None)
        data = snapshot if snapshot is not None else self.render(obj)
        event = objects.event(self.now(), type_, data, self.api_version, request, previous)
        self.store.add("events", event)
        self._submit(event)

    def emit_updated(self, type_: str, obj: dict[str, Any], before: dict[str, Any]) -> None:
        """Emit ``*.updated`` with Stripe's ``previous_attributes`` (top-level diff)."""
        after = self.render(obj)
        previous = {k: v for k, v in before.items() if after.get(k) != v}
        if previous:
            self.emit(type_, obj, previous)

    # ================================================================ customers
    def create_customer(self, p: dict[str, Any]) -> dict[str, Any]:
        cust = objects.customer(self.now(), p)
        cust["metadata"] = merge_metadata({}, p.get("metadata"))
        self.store.add("customers", cust)
        for tax in p.get("tax_id_data") or []:
            self._add_tax_id(cust["id"], tax["type"], tax["value"], emit=False)
        self.emit("customer.created", cust)
        return cust

    def update_customer(self, customer_id: str, p: dict[str, Any]) -> dict[str, Any]:
        cust = self.store.get(customer_id, "customer")
        before = self.render(cust)
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
        self.emit_updated("customer.updated", cust, before)
        return cust

    def list_customers(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            c
            for c in self.store.all("customers")
            if ("email" not in p or c["email"] == p["email"])
            and created_matches(c["created"], p.get("created"))
        ]

    def _add_tax_id(self, customer_id: str, type_: str, value: str, emit: bool = True):
        tax = objects.tax_id(self.now(), customer_id, type_, value)
        self.store.add("tax_ids", tax)
        if emit:
            self.emit("customer.tax_id.created", tax)
        return tax

    def create_tax_id(self, customer_id: str, p: dict[str, Any]) -> dict[str, Any]:
        self.store.get(customer_id, "customer")
        return self._add_tax_id(customer_id, p["type"], p["value"])

    def list_tax_ids(self, customer_id: str) -> list[dict[str, Any]]:
        self.store.get(customer_id, "customer")
        return [t for t in self.store.all("tax_ids") if t["customer"] == customer_id]

    def delete_tax_id(self, customer_id: str, tax_id: str) -> dict[str, Any]:
        tax = self.store.get(tax_id, "tax_id")
        if tax["customer"] != customer_id:
            raise missing("tax_id", tax_id)
        self.store.order["tax_ids"].remove(tax_id)
        del self.store.objects[tax_id]
        self.emit("customer.tax_id.deleted", tax)
        return {"id": tax_id, "object": "tax_id", "deleted": True}

    # ================================================================ catalog
    def create_product(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("id") and p["id"] in self.store.objects:
            raise invalid("Product already exists.", "id", "resource_already_exists")
        prod = objects.product(self.now(), p)
        prod["metadata"] = merge_metadata({}, p.get("metadata"))
        self.store.add("products", prod)
        self.emit("product.created", prod)
        if p.get("default_price_data"):
            price = self.create_price({**p["default_price_data"], "product": prod["id"]})
            prod["default_price"] = price["id"]
        return prod

    def update_product(self, product_id: str, p: dict[str, Any]) -> dict[str, Any]:
        prod = self.store.get(product_id, "product")
        before = self.render(prod)
        for key in ("name", "active", "description", "default_price", "url", "unit_label"):
            if key in p:
                prod[key] = p[key] if p[key] != "" else None
        if "metadata" in p:
            prod["metadata"] = merge_metadata(prod["metadata"], p["metadata"])
        prod["updated"] = self.now()
        self.emit_updated("product.updated", prod, before)
        return prod

    def list_products(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        ids = set(p.get("ids") or [])
        return [
            x
            for x in self.store.all("products")
            if ("active" not in p or x["active"] == p["active"]) and (not ids or x["id"] in ids)
        ]

    def _price_by_lookup_key(self, key: str) -> dict[str, Any] | None:
        for price in self.store.all("prices"):
            if price["lookup_key"] == key:
                return price
        return None

    def _claim_lookup_key(self, key: str, transfer: bool, owner: str | None) -> None:
        holder = self._price_by_lookup_key(key)
        if holder is None or holder["id"] == owner:
            return
        if not transfer:
            raise invalid(f"A price (`{holder['id']}`) already uses that lookup key.", "lookup_key")
        before = self.render(holder)
        holder["lookup_key"] = None
        self.emit_updated("price.updated", holder, before)

    def create_price(self, p: dict[str, Any]) -> dict[str, Any]:
        if "product" in p and "product_data" in p:
            raise invalid("You may only specify one of these parameters: product, product_data.", "product")
        if "product" not in p and "product_data" not in p:
            raise StripeApiError(
                "Missing required param: product.", param="product", code="parameter_missing"
            )
        if p.get("unit_amount") is None and p.get("unit_amount_decimal") is None:
            raise StripeApiError(
                "Missing required param: unit_amount.",
                param="unit_amount",
                code="parameter_missing",
            )
        if "product" in p:
            product_id = self.store.get(p["product"], "product", "product")["id"]
        if p.get("lookup_key"):
            self._claim_lookup_key(p["lookup_key"], p.get("transfer_lookup_key", False), None)
        if "product_data" in p:  # only create side effects once everything validated
            product_id = self.create_product(p["product_data"])["id"]
        price = objects.price(self.now(), p, product_id)
        price["metadata"] = merge_metadata({}, p.get("metadata"))
        self.store.add("prices", price)
        self.emit("price.created", price)
        return price

    def update_price(self, price_id: str, p: dict[str, Any]) -> dict[str, Any]:
        price = self.store.get(price_id, "price")
        before = self.render(price)
        if "lookup_key" in p:
            if p["lookup_key"]:
                self._claim_lookup_key(p["lookup_key"], p.get("transfer_lookup_key", False), price_id)
            price["lookup_key"] = p["lookup_key"] or None
        for key in ("active", "nickname", "tax_behavior"):
            if key in p:
                price[key] = p[key] if p[key] != "" else None
        if "metadata" in p:
            price["metadata"] = merge_metadata(price["metadata"], p["metadata"])
        self.emit_updated("price.updated", price, before)
        return price

    def list_prices(self, p: dict[str, Any]) -> list[dict[str, Any]]:
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

    # ================================================================ checkout
    def create_checkout_session(self, p: dict[str, Any]) -> dict[str, Any]:
        mode = p.get("mode")
        if mode is None:
            raise StripeApiError("Missing required param: mode.", param="mode", code="parameter_missing")
        if mode != "subscription":
            raise invalid(f"The emulator only implements mode=subscription, got {mode}.", "mode")
        if p.get("customer") and p.get("customer_email"):
            raise invalid(
                "You may only specify one of these parameters: customer, customer_email.",
                "customer",
            )
        if p.get("customer"):
            self.store.get(p["customer"], "customer", "customer")
        line_items = p.get("line_items") or []
        if not line_items:
            raise StripeApiError(
                "Missing required param: line_items.", param="line_items", code="parameter_missing"
            )
        resolved = []
        for i, li in enumerate(line_items):
            if "price" not in li:
                raise StripeApiError(
                    f"Missing required param: line_items[{i}][price].",
                    param=f"line_items[{i}][price]",
                    code="parameter_missing",
                )
            price = self.store.get(li["price"], "price", f"line_items[{i}][price]")
            if not price["active"]:
                raise invalid(f"The price specified ({price['id']}) is inactive.", f"line_items[{i}][price]")
            resolved.append({"price": price["id"], "quantity": li.get("quantity", 1)})
        if not any(self.store.get(li["price"])["type"] == "recurring" for li in resolved):
            raise invalid(
                "You must provide at least one recurring price in `subscription` mode when using prices.",
                "line_items",
            )
        self._check_intervals([self.store.get(li["price"]) for li in resolved], "line_items")
        session = objects.checkout_session(self.now(), p, self._base_url())
        first = self.store.get(resolved[0]["price"])
        total = sum(self.store.get(li["price"])["unit_amount"] * li["quantity"] for li in resolved)
        session.update(currency=first["currency"], amount_subtotal=total, amount_total=total)
        self.store.add("checkout_sessions", session)
        # Kept beside the session (Stripe exposes them via /line_items or expand[]).
        self._session_extras[session["id"]] = {
            "line_items": resolved,
            "subscription_data": p.get("subscription_data") or {},
        }
        return session

    def session_line_items(self, session_id: str) -> list[dict[str, Any]]:
        self.store.get(session_id, "checkout.session")
        out: list[dict[str, Any]] = []
        for li in self._session_extras[session_id]["line_items"]:
            price = self.store.get(li["price"])
            product = self.store.get(price["product"])
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
                    "description": product["name"],
                    "price": copy.deepcopy(price),
                    "quantity": li["quantity"],
                }
            )
        return out

    def list_checkout_sessions(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            s
            for s in self.store.all("checkout_sessions")
            if all(s.get(k) == p[k] for k in ("customer", "status", "subscription") if k in p)
        ]

    def expire_checkout_session(self, session_id: str) -> dict[str, Any]:
        session = self.store.get(session_id, "checkout.session")
        if session["status"] != "open":
            raise invalid(
                f'Only Checkout Sessions with a status in ["open"] can be expired. '
                f'This Checkout Session has a status of "{session["status"]}".'
            )
        session["status"] = "expired"
        self.emit("checkout.session.expired", session)
        return session

    def complete_checkout(
        self,
        session_id: str,
        *,
        payment_fails: bool = False,
        email: str | None = None,
        name: str | None = None,
        tax_id: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        session = self.store.get(session_id, "checkout.session")
        if session["status"] != "open":
            raise invalid(f"Checkout session {session_id} is {session['status']}, not open.")
        extras = self._session_extras[session_id]
        if session["customer"]:
            cust = self.store.get(session["customer"])
        else:
            cust = self.create_customer(
                {
                    "email": email or session["customer_email"] or "customer@example.com",
                    "name": name,
                }
            )
        if tax_id and session["tax_id_collection"]["enabled"]:
            self._add_tax_id(cust["id"], tax_id[0], tax_id[1])
        data = extras["subscription_data"]
        if payment_fails:
            self._fail_next[f"checkout:{session_id}"] = 1
        sub, inv = self._start_subscription(
            cust,
            extras["line_items"],
            metadata=data.get("metadata") or {},
            trial_days=data.get("trial_period_days"),
            description=data.get("description"),
            fail_key=f"checkout:{session_id}",
        )
        session["customer_details"] = {
            "address": None,
            "email": cust["email"],
            "name": cust["name"],
            "phone": None,
            "tax_exempt": cust["tax_exempt"],
            "tax_ids": [{"type": t["type"], "value": t["value"]} for t in self.list_tax_ids(cust["id"])],
        }
        session["customer"] = cust["id"]
        session["subscription"] = sub["id"]
        session["invoice"] = inv["id"]
        if inv["status"] == "paid":
            session["status"] = "complete"
            session["payment_status"] = "paid" if inv["amount_due"] else "no_payment_required"
            self.emit("checkout.session.completed", session)
        return session

    # ================================================================ portal
    def create_portal_configuration(self, p: dict[str, Any]) -> dict[str, Any]:
        is_default = not self.store.all("portal_configurations")
        conf = objects.portal_configuration(self.now(), p, is_default)
        self.store.add("portal_configurations", conf)
        self.emit("billing_portal.configuration.created", conf)
        return conf

    def update_portal_configuration(self, conf_id: str, p: dict[str, Any]) -> dict[str, Any]:
        conf = self.store.get(conf_id, "billing_portal.configuration")
        before = self.render(conf)
        for key in ("active", "default_return_url", "name"):
            if key in p:
                conf[key] = p[key] if p[key] != "" else None
        if "features" in p:
            conf["features"] = {**conf["features"], **p["features"]}
        if "business_profile" in p:
            conf["business_profile"].update(p["business_profile"])
        if "metadata" in p:
            conf["metadata"] = merge_metadata(conf["metadata"], p["metadata"])
        conf["updated"] = self.now()
        self.emit_updated("billing_portal.configuration.updated", conf, before)
        return conf

    def create_portal_session(self, p: dict[str, Any]) -> dict[str, Any]:
        if "customer" not in p:
            raise StripeApiError(
                "Missing required param: customer.", param="customer", code="parameter_missing"
            )
        cust = self.store.get(p["customer"], "customer", "customer")
        if "configuration" in p:
            conf = self.store.get(p["configuration"], "billing_portal.configuration", "configuration")
        else:
            defaults = [c for c in self.store.all("portal_configurations") if c["is_default"]]
            conf = defaults[0] if defaults else self.create_portal_configuration({"features": {}})
        if not p.get("return_url") and not conf["default_return_url"]:
            pass  # Stripe allows it; the portal then shows no return link.
        session = objects.portal_session(self.now(), cust["id"], conf["id"], p, self._base_url())
        if not session["return_url"]:
            session["return_url"] = conf["default_return_url"]
        self.store.add("portal_sessions", session)
        return session

    # ================================================================ subscriptions
    def _check_intervals(self, prices: list[dict[str, Any]], param: str) -> None:
        recurring = {
            (p["recurring"]["interval"], p["recurring"]["interval_count"], p["currency"])
            for p in prices
            if p["recurring"]
        }
        if len(recurring) > 1:
            raise invalid(
                "Currency and interval fields must match across all plans on this "
                "subscription. Found mismatch in interval field.",
                param,
            )

    def _interval(self, sub: dict[str, Any]) -> tuple[str, int]:
        price = self.store.get(sub["items"]["data"][0]["price"])
        return price["recurring"]["interval"], price["recurring"]["interval_count"]

    def _set_period(self, sub: dict[str, Any], start: int, end: int) -> None:
        sub["current_period_start"], sub["current_period_end"] = start, end
        for item in sub["items"]["data"]:
            item["current_period_start"], item["current_period_end"] = start, end

    def _start_subscription(
        self,
        cust: dict[str, Any],
        items: list[dict[str, Any]],
        *,
        metadata: dict[str, str],
        trial_days: int | None,
        description: str | None = None,
        fail_key: str | None = None,
        trial_end: int | None = None,
        payment_behavior: str = "allow_incomplete",
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        now = self.now()
        prices = [self.store.get(i["price"]) for i in items]
        self._check_intervals(prices, "items")
        sub = objects.subscription(now, cust["id"], prices[0]["currency"])
        sub["metadata"] = merge_metadata({}, metadata)
        sub["description"] = description
        for item, price in zip(items, prices, strict=True):
            sub["items"]["data"].append(
                objects.subscription_item(now, sub["id"], price["id"], item.get("quantity", 1))
            )
        sub["items"]["total_count"] = len(items)
        interval, count = self._interval(sub)
        if trial_days:
            trial_end = now + trial_days * 86400
        if trial_end:
            sub.update(status="trialing", trial_start=now, trial_end=trial_end)
            sub["billing_cycle_anchor"] = trial_end
            self._set_period(sub, now, trial_end)
        else:
            self._set_period(sub, now, interval_step(now, interval, count, 1))
        self.store.add("subscriptions", sub)
        inv = self._build_invoice(sub, "subscription_create", sub["current_period_start"])
        for item in sub["items"]["data"]:
            price = self.store.get(item["price"])
            amount = 0 if trial_end else price["unit_amount"] * item["quantity"]
            label = "Trial period for " if trial_end else f"{item['quantity']} × "
            self._add_line(
                inv,
                sub,
                item,
                price,
                amount,
                f"{label}{self._product_name(price)}",
                sub["current_period_start"],
                sub["current_period_end"],
                False,
            )
        sub["latest_invoice"] = inv["id"]
        attempt = payment_behavior != "default_incomplete"
        paid = self._attempt_payment(inv, fail_key or sub["id"], attempt=attempt)
        if not paid and payment_behavior == "error_if_incomplete":
            self._discard(sub, inv)
            raise card_declined()
        if not trial_end:
            sub["status"] = "active" if paid else "incomplete"
        self.emit("customer.subscription.created", sub)
        self._emit_invoice_outcome(inv, paid, attempted=attempt)
        return sub, inv

    def _discard(self, sub: dict[str, Any], inv: dict[str, Any]) -> None:
        self._void(inv, emit=False, remove=True)
        self.store.order["subscriptions"].remove(sub["id"])
        del self.store.objects[sub["id"]]

    def create_subscription(self, p: dict[str, Any]) -> dict[str, Any]:
        if "customer" not in p:
            raise StripeApiError(
                "Missing required param: customer.", param="customer", code="parameter_missing"
            )
        cust = self.store.get(p["customer"], "customer", "customer")
        items = p.get("items") or []
        if not items:
            raise StripeApiError("Missing required param: items.", param="items", code="parameter_missing")
        for i, item in enumerate(items):
            if "price" not in item:
                raise StripeApiError(
                    f"Missing required param: items[{i}][price].",
                    param=f"items[{i}][price]",
                    code="parameter_missing",
                )
            self.store.get(item["price"], "price", f"items[{i}][price]")
        trial_end = p.get("trial_end")
        sub, _ = self._start_subscription(
            cust,
            items,
            metadata=p.get("metadata") or {},
            trial_days=p.get("trial_period_days"),
            description=p.get("description"),
            trial_end=None if trial_end in (None, "now") else trial_end,
            payment_behavior=p.get("payment_behavior", "allow_incomplete"),
        )
        if p.get("cancel_at_period_end"):
            self._set_cancel_at(sub, sub["current_period_end"])
        return sub

    def list_subscriptions(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        status = p.get("status")

        def keep(s: dict[str, Any]) -> bool:
            if status is None:
                # Stripe hides canceled subscriptions unless asked for them.
                ok = s["status"] not in ENDED
            elif status == "all":
                ok = True
            elif status == "ended":
                ok = s["status"] in ENDED
            else:
                ok = s["status"] == status
            prices = [i["price"] for i in s["items"]["data"]]
            return (
                ok
                and ("customer" not in p or s["customer"] == p["customer"])
                and ("price" not in p or p["price"] in prices)
                and created_matches(s["created"], p.get("created"))
            )

        return [s for s in self.store.all("subscriptions") if keep(s)]

    def _product_name(self, price: dict[str, Any]) -> str:
        return self.store.get(price["product"])["name"]

    # ---------------------------------------------------------------- update
    def _plan_item_changes(
        self, sub: dict[str, Any], items_param: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Resolve ``items[]`` into the subscription's new item list (not yet applied)."""
        new_items = [
            {"id": i["id"], "price": i["price"], "quantity": i["quantity"], "existing": True}
            for i in sub["items"]["data"]
        ]
        by_id = {i["id"]: i for i in new_items}
        for n, change in enumerate(items_param):
            param = f"items[{n}]"
            if "price" in change:
                self.store.get(change["price"], "price", f"{param}[price]")
            if "id" in change:
                if change["id"] not in by_id:
                    raise invalid(
                        f"Subscription item {change['id']} does not belong to subscription {sub['id']}.",
                        f"{param}[id]",
                    )
                target = by_id[change["id"]]
                if change.get("deleted"):
                    new_items.remove(target)
                    continue
                target["price"] = change.get("price", target["price"])
                target["quantity"] = change.get("quantity", target["quantity"])
            else:
                if "price" not in change:
                    raise StripeApiError(
                        f"Missing required param: {param}[price].",
                        param=f"{param}[price]",
                        code="parameter_missing",
                    )
                new_items.append(
                    {
                        "id": None,
                        "price": change["price"],
                        "quantity": change.get("quantity", 1),
                        "existing": False,
                    }
                )
        if not new_items:
            raise invalid("A subscription must have at least one active plan.", "items")
        self._check_intervals([self.store.get(i["price"]) for i in new_items], "items")
        return new_items

    def _prorations(
        self, sub: dict[str, Any], new_items: list[dict[str, Any]], at: int, reset: bool
    ) -> list[tuple[dict[str, Any] | None, dict[str, Any], int, ProratedLine]]:
        """(old item or None, price, quantity, line) for every changed item."""
        start, end = sub["current_period_start"], sub["current_period_end"]
        lines = []
        old = {i["id"]: i for i in sub["items"]["data"]}
        kept = {i["id"] for i in new_items if i["existing"]}
        for item in sub["items"]["data"]:
            new = next((n for n in new_items if n["id"] == item["id"]), None)
            unchanged = (
                new is not None and new["price"] == item["price"] and new["quantity"] == item["quantity"]
            )
            if unchanged and not reset:
                continue
            price = self.store.get(item["price"])
            credit = credit_unused(price["unit_amount"], item["quantity"], start, end, at)
            lines.append((item, price, item["quantity"], credit))
        if not reset:
            for new in new_items:
                prev = old.get(new["id"]) if new["id"] in kept else None
                if prev and prev["price"] == new["price"] and prev["quantity"] == new["quantity"]:
                    continue
                price = self.store.get(new["price"])
                debit = charge_remaining(price["unit_amount"], new["quantity"], start, end, at)
                lines.append((prev, price, new["quantity"], debit))
        return lines

    def _proration_description(self, price: dict[str, Any], line: ProratedLine, qty: int) -> str:
        name = self._product_name(price)
        what = "Unused time on" if line.unused else "Remaining time on"
        prefix = f"{qty} × " if qty != 1 else ""
        return f"{what} {prefix}{name} after {format_date(line.start)}"

    def update_subscription(self, sub_id: str, p: dict[str, Any]) -> dict[str, Any]:
        sub = self.store.get(sub_id, "subscription")
        if sub["status"] in ENDED:
            raise invalid(
                "A canceled subscription can only update its cancellation_details and metadata."
                if sub["status"] == "canceled"
                else f"This subscription is {sub['status']} and cannot be updated."
            )
        plan = self._plan_update(sub, p)
        before = self.render(sub)
        behavior = p.get("payment_behavior", "allow_incomplete")
        inv = None
        paid = True
        if plan["invoice_now"]:
            inv = self._build_update_invoice(sub, plan)
            paid = self._attempt_payment(inv, sub["id"])
            if not paid and behavior == "error_if_incomplete":
                self._void(inv, emit=False, remove=True)
                raise card_declined()
            if not paid and behavior == "pending_if_incomplete":
                self._pending_changes[sub["id"]] = (plan, inv["id"])
                sub["pending_update"] = {
                    "billing_cycle_anchor": plan["anchor"],
                    "expires_at": self.now() + INCOMPLETE_WINDOW,
                    "subscription_items": [
                        {"id": i["id"], "price": i["price"], "quantity": i["quantity"]} for i in plan["items"]
                    ],
                    "trial_end": None,
                    "trial_from_plan": None,
                }
                sub["latest_invoice"] = inv["id"]
                self._emit_invoice_outcome(inv, paid)
                self.emit_updated("customer.subscription.updated", sub, before)
                return sub
        self._apply_plan(sub, plan)
        if inv is not None:
            sub["latest_invoice"] = inv["id"]
            if not paid and sub["status"] in ("active", "trialing"):
                sub["status"] = "past_due"
        self.emit_updated("customer.subscription.updated", sub, before)
        if inv is not None:
            self._emit_invoice_outcome(inv, paid)
        return sub

    def _plan_update(self, sub: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
        now = self.now()
        proration_behavior = p.get("proration_behavior", "create_prorations")
        anchor_now = (p.get("billing_cycle_anchor") or {}).get("type") == "now"
        if "proration_date" in p and anchor_now:
            raise invalid(
                "When `billing_cycle_anchor=now`, `proration_date` cannot be set.",
                "proration_date",
            )
        at = p.get("proration_date", now)
        start, end = sub["current_period_start"], sub["current_period_end"]
        if not start <= at <= end:
            raise invalid("The proration_date must be within the current billing period.", "proration_date")
        new_items = (
            self._plan_item_changes(sub, p["items"])
            if "items" in p
            else [
                {**{k: i[k] for k in ("id", "price", "quantity")}, "existing": True}
                for i in sub["items"]["data"]
            ]
        )
        old_interval = self._interval(sub)
        new_price = self.store.get(new_items[0]["price"])
        new_interval = (
            new_price["recurring"]["interval"],
            new_price["recurring"]["interval_count"],
        )
        # Changing the interval always resets the anchor and invoices now, like Stripe.
        reset = anchor_now or new_interval != old_interval
        if sub["status"] == "trialing":
            reset = False
        lines = []
        if proration_behavior != "none" and sub["status"] != "trialing":
            lines = self._prorations(sub, new_items, now if reset else at, reset)
        invoice_now = reset or (proration_behavior == "always_invoice" and bool(lines))
        return {
            "items": new_items,
            "lines": lines,
            "reset": reset,
            "anchor": now if reset else None,
            "invoice_now": invoice_now,
            "interval": new_interval,
            "metadata": p.get("metadata"),
            "cancel_at_period_end": p.get("cancel_at_period_end"),
            "description": p.get("description"),
            "cancellation_details": p.get("cancellation_details"),
            "proration_behavior": proration_behavior,
            "cancel_at": p.get("cancel_at", _UNSET),
        }

    def _apply_plan(self, sub: dict[str, Any], plan: dict[str, Any]) -> None:
        now = self.now()
        current = {i["id"]: i for i in sub["items"]["data"]}
        items = []
        for new in plan["items"]:
            if new["existing"]:
                item = current[new["id"]]
                item["price"], item["quantity"] = new["price"], new["quantity"]
            else:
                item = objects.subscription_item(now, sub["id"], new["price"], new["quantity"])
                new["id"] = item["id"]
                item["current_period_start"] = sub["current_period_start"]
                item["current_period_end"] = sub["current_period_end"]
            items.append(item)
        sub["items"]["data"] = items
        sub["items"]["total_count"] = len(items)
        if plan["reset"]:
            interval, count = plan["interval"]
            sub["billing_cycle_anchor"] = now
            self._set_period(sub, now, interval_step(now, interval, count, 1))
        elif not plan["invoice_now"]:
            # create_prorations: the lines wait as pending invoice items for the next invoice.
            for old, price, qty, line in plan["lines"]:
                item_id = old["id"] if old else self._item_for_price(sub, price["id"])
                ii = objects.invoice_item(
                    now,
                    customer_id=sub["customer"],
                    sub_id=sub["id"],
                    item_id=item_id,
                    price=price,
                    amount=line.amount,
                    quantity=qty,
                    description=self._proration_description(price, line, qty),
                    start=line.start,
                    end=line.end,
                )
                self.store.add("invoiceitems", ii)
                self.emit("invoiceitem.created", ii)
        if plan["metadata"] is not None:
            sub["metadata"] = merge_metadata(sub["metadata"], plan["metadata"])
        if plan["description"] is not None:
            sub["description"] = plan["description"] or None
        if plan["cancellation_details"]:
            sub["cancellation_details"].update(plan["cancellation_details"])
        if plan["cancel_at_period_end"] is not None:
            self._set_cancel_at(sub, sub["current_period_end"] if plan["cancel_at_period_end"] else None)
        if plan["cancel_at"] is not _UNSET:
            value = plan["cancel_at"]
            if isinstance(value, str) and value:  # min_period_end / max_period_end ...
                value = sub["current_period_end"]
            self._set_cancel_at(sub, value or None)
        sub["pending_update"] = None

    def _set_cancel_at(self, sub: dict[str, Any], cancel_at: int | None) -> None:
        # Current API versions mirror cancel_at_period_end into cancel_at (= period end).
        sub["cancel_at"] = cancel_at
        sub["cancel_at_period_end"] = cancel_at == sub["current_period_end"]
        sub["canceled_at"] = self.now() if cancel_at else None
        reason = "cancellation_requested" if cancel_at else None
        sub["cancellation_details"] = {"comment": None, "feedback": None, "reason": reason}

    def _item_for_price(self, sub: dict[str, Any], price_id: str) -> str | None:
        return next((i["id"] for i in sub["items"]["data"] if i["price"] == price_id), None)

    def _build_update_invoice(self, sub: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
        now = self.now()
        inv = self._build_invoice(sub, "subscription_update", now)
        for old, price, qty, line in plan["lines"]:
            item_id = old["id"] if old else None
            self._add_line(
                inv,
                sub,
                {"id": item_id},
                price,
                line.amount,
                self._proration_description(price, line, qty),
                line.start,
                line.end,
                True,
            )
        if plan["reset"]:
            interval, count = plan["interval"]
            end = interval_step(now, interval, count, 1)
            for new in plan["items"]:
                price = self.store.get(new["price"])
                self._add_line(
                    inv,
                    sub,
                    {"id": new["id"]},
                    price,
                    price["unit_amount"] * new["quantity"],
                    f"{new['quantity']} × {self._product_name(price)}",
                    now,
                    end,
                    False,
                )
        self._sweep_pending_items(inv, sub)
        return inv

    # ---------------------------------------------------------------- cancel
    def cancel_subscription(self, sub_id: str, p: dict[str, Any]) -> dict[str, Any]:
        sub = self.store.get(sub_id, "subscription")
        if sub["status"] in ENDED:
            raise invalid(
                f"A canceled subscription can't be canceled again ({sub_id}).",
                code="resource_missing" if sub["status"] == "canceled" else None,
            )
        now = self.now()
        if p.get("prorate") and sub["status"] != "trialing":
            for item in sub["items"]["data"]:
                price = self.store.get(item["price"])
                line = credit_unused(
                    price["unit_amount"],
                    item["quantity"],
                    sub["current_period_start"],
                    sub["current_period_end"],
                    now,
                )
                if line.amount:
                    ii = objects.invoice_item(
                        now,
                        customer_id=sub["customer"],
                        sub_id=sub["id"],
                        item_id=item["id"],
                        price=price,
                        amount=line.amount,
                        quantity=item["quantity"],
                        description=self._proration_description(price, line, item["quantity"]),
                        start=line.start,
                        end=line.end,
                    )
                    self.store.add("invoiceitems", ii)
        details = p.get("cancellation_details") or {}
        self._end_subscription(sub, "canceled", reason="cancellation_requested", details=details)
        if p.get("invoice_now"):
            inv = self._build_invoice(sub, "subscription_update", now)
            self._sweep_pending_items(inv, sub)
            if inv["lines"]["data"]:
                sub["latest_invoice"] = inv["id"]
                self._emit_invoice_outcome(inv, self._attempt_payment(inv, sub["id"]))
            else:
                self._discard_invoice(inv)
        return sub

    def _discard_invoice(self, inv: dict[str, Any]) -> None:
        self.store.order["invoices"].remove(inv["id"])
        del self.store.objects[inv["id"]]

    def _end_subscription(
        self,
        sub: dict[str, Any],
        status: str,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        at: int | None = None,
    ) -> None:
        now = self.now() if at is None else at
        sub["status"] = status
        sub["ended_at"] = now
        if status == "canceled":
            sub["canceled_at"] = sub["canceled_at"] or now
        sub["pending_update"] = None
        if reason:
            sub["cancellation_details"]["reason"] = reason
        if details:
            sub["cancellation_details"].update(details)
        self.emit("customer.subscription.deleted", sub)

    # ================================================================ invoices
    def _build_invoice(self, sub: dict[str, Any], reason: str, period_start: int) -> dict[str, Any]:
        cust = self.store.get(sub["customer"])
        inv = objects.invoice(self.now(), cust, sub, reason)
        inv["period_start"] = period_start
        inv["period_end"] = self.now()
        self.store.add("invoices", inv)
        return inv

    def _add_line(
        self,
        inv: dict[str, Any],
        sub: dict[str, Any],
        item: dict[str, Any],
        price: dict[str, Any],
        amount: int,
        description: str,
        start: int,
        end: int,
        proration: bool,
        invoice_item_id: str | None = None,
        quantity: int | None = None,
    ) -> None:
        line = objects.invoice_line(
            invoice_id=inv["id"],
            sub_id=sub["id"],
            item_id=item.get("id"),
            price=price,
            amount=amount,
            quantity=quantity if quantity is not None else item.get("quantity", 1),
            description=description,
            start=start,
            end=end,
            proration=proration,
            invoice_item_id=invoice_item_id,
        )
        inv["lines"]["data"].append(line)
        inv["lines"]["total_count"] = len(inv["lines"]["data"])

    def _sweep_pending_items(self, inv: dict[str, Any], sub: dict[str, Any]) -> None:
        """Pull the subscription's pending invoice items (prorations) onto this invoice."""
        for ii in self.pending_invoice_items(sub["id"]):
            ii["invoice"] = inv["id"]
            price = self.store.get(ii["pricing"]["price_details"]["price"])
            self._add_line(
                inv,
                sub,
                {"id": ii["parent"]["subscription_details"]["subscription_item"]},
                price,
                ii["amount"],
                ii["description"],
                ii["period"]["start"],
                ii["period"]["end"],
                ii["proration"],
                invoice_item_id=ii["id"],
                quantity=ii["quantity"],
            )

    def pending_invoice_items(self, sub_id: str | None = None) -> list[dict[str, Any]]:
        return [
            ii
            for ii in self.store.all("invoiceitems")
            if ii["invoice"] is None
            and (sub_id is None or ii["parent"]["subscription_details"]["subscription"] == sub_id)
        ]

    def _finalize(self, inv: dict[str, Any]) -> None:
        cust = self.store.get(inv["customer"])
        total = sum(line["amount"] for line in inv["lines"]["data"])
        # Customer balance: negative = credit. Credits from prorations carry forward.
        net = total + cust["balance"]
        inv.update(
            subtotal=total,
            subtotal_excluding_tax=total,
            total=total,
            total_excluding_tax=total,
            starting_balance=cust["balance"],
            ending_balance=min(net, 0),
            amount_due=max(net, 0),
            amount_remaining=max(net, 0),
            status="open",
            number=f"{cust['invoice_prefix']}-{cust['next_invoice_sequence']:04d}",
            effective_at=self.now(),
            hosted_invoice_url=f"{self._base_url()}/invoice/{inv['id']}",
        )
        inv["status_transitions"]["finalized_at"] = self.now()
        cust["next_invoice_sequence"] += 1
        cust["balance"] = min(net, 0)

    def _attempt_payment(self, inv: dict[str, Any], fail_key: str, attempt: bool = True) -> bool:
        """Finalize (if draft) and charge. Event snapshots are kept per step so that
        ``invoice.created`` shows a draft and ``invoice.finalized`` an open invoice."""
        snaps = self._invoice_snaps.setdefault(inv["id"], {})
        if inv["status"] == "draft":
            snaps["invoice.created"] = self.render(inv)
            self._finalize(inv)
            snaps["invoice.finalized"] = self.render(inv)
        if inv["amount_due"] > 0 and not attempt:
            return False  # default_incomplete: wait for the customer to confirm payment
        if inv["amount_due"] > 0:
            inv["attempted"] = True
            inv["attempt_count"] += 1
            if self._fail_next.get(fail_key):
                self._fail_next[fail_key] -= 1
                inv["next_payment_attempt"] = self.now() + 3 * 86400
                return False
        inv.update(status="paid", amount_paid=inv["amount_due"], amount_remaining=0)
        inv["status_transitions"]["paid_at"] = self.now()
        inv["next_payment_attempt"] = None
        return True

    def _emit_invoice_outcome(self, inv: dict[str, Any], paid: bool, attempted: bool = True):
        # Emitted after the caller's own subscription event, in the order Stripe sends.
        snaps = self._invoice_snaps.pop(inv["id"], {})
        for type_ in ("invoice.created", "invoice.finalized"):
            if type_ in snaps:
                self.emit(type_, inv, snapshot=snaps[type_])
        if not attempted and not paid:
            return
        if paid:
            self.emit("invoice.paid", inv)
            self.emit("invoice.payment_succeeded", inv)
        else:
            self.emit("invoice.payment_failed", inv)

    def _void(self, inv: dict[str, Any], emit: bool = True, remove: bool = False) -> None:
        """Void an unpaid invoice (or drop it entirely when the request is rejected)."""
        for ii in self.store.all("invoiceitems"):
            if ii["invoice"] == inv["id"]:
                ii["invoice"] = None
        if inv["ending_balance"] is not None:
            # Give back the customer credit that finalization applied to this invoice.
            cust = self.store.get(inv["customer"])
            cust["balance"] += inv["starting_balance"] - inv["ending_balance"]
        self._invoice_snaps.pop(inv["id"], None)
        if remove:
            self._discard_invoice(inv)
            return
        inv["status"] = "void"
        inv["amount_remaining"] = 0
        inv["status_transitions"]["voided_at"] = self.now()
        if emit:
            self.emit("invoice.voided", inv)

    def pay_invoice(self, invoice_id: str, p: dict[str, Any]) -> dict[str, Any]:
        inv = self.store.get(invoice_id, "invoice")
        if inv["status"] == "paid":
            raise invalid("Invoice is already paid", code="invoice_already_paid")
        if inv["status"] != "open":
            raise invalid(f"You cannot pay an invoice with status {inv['status']}.")
        sub_id = (inv["parent"] or {}).get("subscription_details", {}).get("subscription")
        if p.get("paid_out_of_band"):
            paid = True
            inv.update(status="paid", amount_paid=0, amount_remaining=0)
        else:
            paid = self._attempt_payment(inv, sub_id or inv["id"])
        if not paid:
            self.emit("invoice.payment_failed", inv)
            raise card_declined()
        self.emit("invoice.paid", inv)
        self.emit("invoice.payment_succeeded", inv)
        if sub_id:
            self._after_invoice_paid(self.store.get(sub_id), inv)
        return inv

    def _after_invoice_paid(self, sub: dict[str, Any], inv: dict[str, Any]) -> None:
        before = self.render(sub)
        pending = self._pending_changes.pop(sub["id"], None)
        if pending and pending[1] == inv["id"]:
            self._apply_plan(sub, pending[0])
            self.emit(
                "customer.subscription.pending_update_applied",
                sub,
                {"pending_update": before["pending_update"]},
            )
        open_left = [
            i
            for i in self.store.all("invoices")
            if i["status"] == "open"
            and (i["parent"] or {}).get("subscription_details", {}).get("subscription") == sub["id"]
        ]
        if sub["status"] in ("incomplete", "past_due", "unpaid") and not open_left:
            sub["status"] = "active"
        self.emit_updated("customer.subscription.updated", sub, before)

    def list_invoices(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        def sub_of(i: dict[str, Any]) -> str | None:
            return (i["parent"] or {}).get("subscription_details", {}).get("subscription")

        return [
            i
            for i in self.store.all("invoices")
            if ("customer" not in p or i["customer"] == p["customer"])
            and ("subscription" not in p or sub_of(i) == p["subscription"])
            and ("status" not in p or i["status"] == p["status"])
            and created_matches(i["created"], p.get("created"))
        ]

    def list_invoice_items(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            ii
            for ii in self.store.all("invoiceitems")
            if ("customer" not in p or ii["customer"] == p["customer"])
            and ("pending" not in p or (ii["invoice"] is None) == p["pending"])
            and ("invoice" not in p or ii["invoice"] == p["invoice"])
        ]

    def preview_invoice(self, p: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/invoices/create_preview``: what the change would bill, without applying."""
        if "subscription" not in p:
            raise invalid("The emulator only previews changes to an existing subscription.", "subscription")
        sub = self.store.get(p["subscription"], "subscription", "subscription")
        if "customer" in p and p["customer"] != sub["customer"]:
            raise invalid("The subscription does not belong to this customer.", "customer")
        details = dict(p.get("subscription_details") or {})
        update = {k: details[k] for k in ("items", "proration_date", "proration_behavior") if k in details}
        if "billing_cycle_anchor" in details:
            update["billing_cycle_anchor"] = {"type": details["billing_cycle_anchor"]}
        plan = self._plan_update(sub, update)
        cust = self.store.get(sub["customer"])
        inv = objects.invoice(self.now(), cust, sub, "upcoming")
        inv["id"] = "upcoming_" + inv["id"]
        inv["lines"]["url"] = f"/v1/invoices/{inv['id']}/lines"
        for old, price, qty, line in plan["lines"]:
            self._add_line(
                inv,
                sub,
                {"id": old["id"] if old else None},
                price,
                line.amount,
                self._proration_description(price, line, qty),
                line.start,
                line.end,
                True,
            )
        for ii in self.pending_invoice_items(sub["id"]):
            price = self.store.get(ii["pricing"]["price_details"]["price"])
            self._add_line(
                inv,
                sub,
                {"id": None},
                price,
                ii["amount"],
                ii["description"],
                ii["period"]["start"],
                ii["period"]["end"],
                True,
                ii["id"],
                ii["quantity"],
            )
        immediate = plan["invoice_now"] or plan["proration_behavior"] == "always_invoice"
        if plan["reset"] or not immediate:
            # The next regular invoice also bills the coming period on the new price.
            interval, count = plan["interval"]
            start = self.now() if plan["reset"] else sub["current_period_end"]
            end = interval_step(start, interval, count, 1)
            for new in plan["items"]:
                price = self.store.get(new["price"])
                self._add_line(
                    inv,
                    sub,
                    {"id": new["id"]},
                    price,
                    price["unit_amount"] * new["quantity"],
                    f"{new['quantity']} × {self._product_name(price)}",
                    start,
                    end,
                    False,
                )
        total = sum(line["amount"] for line in inv["lines"]["data"])
        net = total + cust["balance"]
        inv["lines"]["total_count"] = len(inv["lines"]["data"])
        inv.update(
            subtotal=total,
            total=total,
            subtotal_excluding_tax=total,
            total_excluding_tax=total,
            amount_due=max(net, 0),
            amount_remaining=max(net, 0),
            starting_balance=cust["balance"],
            ending_balance=min(net, 0),
        )
        if immediate:
            inv["billing_reason"] = "subscription_update"
        else:
            inv["period_start"] = sub["current_period_start"]
            inv["period_end"] = sub["current_period_end"]
            inv["created"] = sub["current_period_end"]
        return inv

    # ================================================================ events
    def list_events(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        types = list(p.get("types") or []) + ([p["type"]] if "type" in p else [])

        def type_ok(t: str) -> bool:
            # Stripe accepts one "*" wildcard, e.g. "customer.subscription.*".
            return not types or any(
                t == want or (want.endswith("*") and t.startswith(want[:-1])) for want in types
            )

        return [
            e
            for e in self.store.all("events")
            if type_ok(e["type"]) and created_matches(e["created"], p.get("created"))
        ]

    # ================================================================ clock & hooks
    def advance(self, seconds: int) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        target = self.now() + seconds
        while (step := self._next_due(target)) is not None:
            at, action = step
            self.clock.set(max(at, self.now()))
            action()
        self.clock.set(target)

    def _next_due(self, target: int) -> tuple[int, Callable[[], None]] | None:
        due: list[tuple[int, int, Callable[[], None]]] = []
        for n, sub in enumerate(self.store.all("subscriptions")):
            status = sub["status"]
            if status == "incomplete":
                due.append(
                    (
                        sub["created"] + INCOMPLETE_WINDOW,
                        n,
                        self._bind(self._expire_incomplete, sub),
                    )
                )
            elif status in ("active", "trialing", "past_due", "unpaid"):
                if sub["cancel_at"] and sub["cancel_at"] <= sub["current_period_end"]:
                    due.append((sub["cancel_at"], n, self._bind(self._cancel_at, sub)))
                else:
                    due.append((sub["current_period_end"], n, self._bind(self._renew, sub)))
            if sub["pending_update"]:
                due.append((sub["pending_update"]["expires_at"], n, self._bind(self._expire_pending, sub)))
        for n, session in enumerate(self.store.all("checkout_sessions")):
            if session["status"] == "open":
                due.append(
                    (
                        session["expires_at"],
                        10**9 + n,
                        self._bind(self.expire_checkout_session, session["id"]),
                    )
                )
        due = [d for d in due if d[0] <= target]
        if not due:
            return None
        at, _, action = min(due, key=lambda d: (d[0], d[1]))
        return at, action

    @staticmethod
    def _bind(fn: Callable[..., Any], arg: Any) -> Callable[[], None]:
        return lambda: fn(arg)

    def _expire_incomplete(self, sub: dict[str, Any]) -> None:
        inv = self.store.get(sub["latest_invoice"]) if sub["latest_invoice"] else None
        if inv and inv["status"] == "open":
            self._void(inv)
        self._end_subscription(sub, "incomplete_expired")

    def _expire_pending(self, sub: dict[str, Any]) -> None:
        before = self.render(sub)
        pending = self._pending_changes.pop(sub["id"], None)
        if pending:
            inv = self.store.get(pending[1])
            if inv["status"] == "open":
                self._void(inv)
        sub["pending_update"] = None
        self.emit(
            "customer.subscription.pending_update_expired",
            sub,
            {"pending_update": before["pending_update"]},
        )

    def _cancel_at(self, sub: dict[str, Any]) -> None:
        self._end_subscription(sub, "canceled", reason="cancellation_requested")

    def _renew(self, sub: dict[str, Any]) -> None:
        if sub["cancel_at_period_end"]:
            self._end_subscription(sub, "canceled", reason="cancellation_requested")
            return
        before = self.render(sub)
        start = sub["current_period_end"]
        interval, count = self._interval(sub)
        if sub["status"] == "trialing":
            sub["status"] = "active"
            sub["billing_cycle_anchor"] = start
        end = next_period_end(sub["billing_cycle_anchor"], interval, count, start)
        self._set_period(sub, start, end)
        self.emit_updated("customer.subscription.updated", sub, before)
        inv = self._build_invoice(sub, "subscription_cycle", before["current_period_start"])
        inv["period_end"] = start
        self._sweep_pending_items(inv, sub)
        for item in sub["items"]["data"]:
            price = self.store.get(item["price"])
            self._add_line(
                inv,
                sub,
                item,
                price,
                price["unit_amount"] * item["quantity"],
                f"{item['quantity']} × {self._product_name(price)}",
                start,
                end,
                False,
            )
        sub["latest_invoice"] = inv["id"]
        if sub["status"] == "unpaid":
            # Stripe keeps billing unpaid subscriptions but leaves the invoices as drafts.
            self.emit("invoice.created", inv)
            return
        before = self.render(sub)
        paid = self._attempt_payment(inv, sub["id"])
        self._emit_invoice_outcome(inv, paid)
        if not paid and sub["status"] == "active":
            sub["status"] = "past_due"
            self.emit_updated("customer.subscription.updated", sub, before)

    def fail_next_payment(self, sub_id: str) -> None:
        self.store.get(sub_id, "subscription")
        self._fail_next[sub_id] = self._fail_next.get(sub_id, 0) + 1

    def set_subscription_status(self, sub_id: str, status: str) -> None:
        if status not in SUBSCRIPTION_STATUSES:
            raise ValueError(f"unknown subscription status {status}")
        sub = self.store.get(sub_id, "subscription")
        if status in ENDED:
            self._end_subscription(sub, status)
            return
        before = self.render(sub)
        sub["status"] = status
        self.emit_updated("customer.subscription.updated", sub, before)

    def portal_update_customer(
        self, customer_id: str, email: str | None, tax_id: tuple[str, str] | None
    ) -> None:
        if email is not None:
            self.update_customer(customer_id, {"email": email})
        if tax_id is not None:
            # The portal replaces the customer's tax id: delete + create, as Stripe does.
            for old in self.list_tax_ids(customer_id):
                self.delete_tax_id(customer_id, old["id"])
            self._add_tax_id(customer_id, tax_id[0], tax_id[1])
