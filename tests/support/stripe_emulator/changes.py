"""Changing a subscription (``POST /v1/subscriptions/{id}``): items, proration, pending updates.

A change is first *planned* (:meth:`SubscriptionChanges.plan`: the new item list and the
proration lines, nothing stored), then billed and *applied*. The same plan serves
``POST /v1/invoices/create_preview``, and is kept aside when a
``payment_behavior=pending_if_incomplete`` change waits for its invoice to be paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import objects
from .clock import interval_step
from .errors import invalid, missing_param
from .proration import ItemProration, charge_remaining, credit_unused
from .resource import Obj, Objs, Resource, merge_metadata
from .subscriptions import (
    ENDED,
    INCOMPLETE_WINDOW,
    apply_invoice_settings,
    check_collection,
    check_intervals,
)

if TYPE_CHECKING:
    from .engine import Engine


@dataclass
class PlannedChange:
    items: Objs  # the new item list: id (None for an added item), price, quantity, existing
    prorations: list[ItemProration]
    reset: bool  # the billing cycle restarts now (interval change or billing_cycle_anchor=now)
    invoice_now: bool
    interval: tuple[str, int]
    proration_behavior: str
    params: Obj  # the request, for the fields applied along with the items


class SubscriptionChanges(Resource):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        # sub id -> (planned change, invoice id) for payment_behavior=pending_if_incomplete
        self._pending: dict[str, tuple[PlannedChange, str]] = {}

    def update(self, sub_id: str, p: Obj) -> Obj:
        sub = self.store.get(sub_id, "subscription")
        if sub["status"] in ENDED:
            raise invalid(
                "A canceled subscription can only update its cancellation_details and metadata."
                if sub["status"] == "canceled"
                else f"This subscription is {sub['status']} and cannot be updated."
            )
        behavior = p.get("payment_behavior", "allow_incomplete")
        method = p.get("collection_method", sub["collection_method"])
        check_collection(method, p, behavior)
        invoices = self.engine.invoices
        plan = self.plan(sub, p)
        before = self.engine.render(sub)
        inv = None
        paid = True
        sent = method == "send_invoice"
        if plan.invoice_now:
            inv = self._invoice(sub, plan)
            # what the change asks its invoices to carry applies to this one already
            apply_invoice_settings(inv, p.get("invoice_settings") or {})
            if sent:
                # the collection method and terms this change asks for apply to its invoice
                inv["collection_method"] = "send_invoice"
                paid = invoices.send(inv, p.get("days_until_due") or sub["days_until_due"])
            else:
                paid = invoices.attempt_payment(inv, sub["id"])
            if not paid and behavior == "error_if_incomplete":
                error = self.engine.payments.incomplete_error(inv, subscription=True)
                invoices.void(inv, emit=False, remove=True)
                raise error
            if not paid and behavior == "pending_if_incomplete":
                self._pending[sub["id"]] = (plan, inv["id"])
                sub["pending_update"] = {
                    "billing_cycle_anchor": self.now() if plan.reset else None,
                    "expires_at": self.now() + INCOMPLETE_WINDOW,
                    "subscription_items": [
                        {"id": i["id"], "price": i["price"], "quantity": i["quantity"]} for i in plan.items
                    ],
                    "trial_end": None,
                    "trial_from_plan": None,
                }
                sub["latest_invoice"] = inv["id"]
                invoices.emit_outcome(inv, paid)
                self.events.emit_updated("customer.subscription.updated", sub, before)
                return sub
        self._apply(sub, plan)
        if inv is not None:
            sub["latest_invoice"] = inv["id"]
            if not paid and not sent and sub["status"] in ("active", "trialing"):
                sub["status"] = "past_due"
        self.events.emit_updated("customer.subscription.updated", sub, before)
        if inv is not None:
            invoices.emit_outcome(inv, paid, attempted=not sent)
        return sub

    # ---------------------------------------------------------------- plan
    def plan(self, sub: Obj, p: Obj) -> PlannedChange:
        now = self.now()
        proration_behavior = p.get("proration_behavior", "create_prorations")
        anchor_now = (p.get("billing_cycle_anchor") or {}).get("type") == "now"
        if "proration_date" in p and anchor_now:
            raise invalid(
                "When `billing_cycle_anchor=now`, `proration_date` cannot be set.",
                "proration_date",
            )
        at = p.get("proration_date", now)
        if not sub["current_period_start"] <= at <= sub["current_period_end"]:
            raise invalid("The proration_date must be within the current billing period.", "proration_date")
        new_items = (
            self._item_changes(sub, p["items"])
            if "items" in p
            else [
                {**{k: i[k] for k in ("id", "price", "quantity")}, "existing": True}
                for i in sub["items"]["data"]
            ]
        )
        old_interval = self.engine.subscriptions.interval(sub)
        new_price = self.store.get(new_items[0]["price"])
        new_interval = (new_price["recurring"]["interval"], new_price["recurring"]["interval_count"])
        # Changing the interval always resets the anchor and invoices now, like Stripe.
        reset = anchor_now or new_interval != old_interval
        if sub["status"] == "trialing":
            reset = False
        prorations = []
        if proration_behavior != "none" and sub["status"] != "trialing":
            prorations = self._prorations(sub, new_items, now if reset else at, reset)
        return PlannedChange(
            items=new_items,
            prorations=prorations,
            reset=reset,
            invoice_now=reset or (proration_behavior == "always_invoice" and bool(prorations)),
            interval=new_interval,
            proration_behavior=proration_behavior,
            params=p,
        )

    def _item_changes(self, sub: Obj, items_param: Objs) -> Objs:
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
                    raise missing_param(f"{param}[price]")
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
        check_intervals([self.store.get(i["price"]) for i in new_items], "items")
        return new_items

    def _prorations(self, sub: Obj, new_items: Objs, at: int, reset: bool) -> list[ItemProration]:
        """A credit for every changed (or, on reset, every) old item, a debit for every new one."""
        start, end = sub["current_period_start"], sub["current_period_end"]
        out = []
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
            out.append(ItemProration(item["id"], price, item["quantity"], credit))
        if not reset:
            for new in new_items:
                prev = old.get(new["id"]) if new["id"] in kept else None
                if prev and prev["price"] == new["price"] and prev["quantity"] == new["quantity"]:
                    continue
                price = self.store.get(new["price"])
                debit = charge_remaining(price["unit_amount"], new["quantity"], start, end, at)
                out.append(ItemProration(prev["id"] if prev else None, price, new["quantity"], debit))
        return out

    # ---------------------------------------------------------------- bill and apply
    def _invoice(self, sub: Obj, plan: PlannedChange) -> Obj:
        """The invoice a change bills at once (always_invoice, or a reset billing cycle)."""
        invoices = self.engine.invoices
        now = self.now()
        inv = invoices.build(sub, "subscription_update", now)
        for change in plan.prorations:
            invoices.add_proration_line(inv, sub, change)
        if plan.reset:
            interval, count = plan.interval
            end = interval_step(now, interval, count, 1)
            for new in plan.items:
                invoices.add_period_line(inv, sub, new, now, end)
        invoices.sweep_pending(inv, sub)
        return inv

    def _apply(self, sub: Obj, plan: PlannedChange) -> None:
        now = self.now()
        subscriptions = self.engine.subscriptions
        current = {i["id"]: i for i in sub["items"]["data"]}
        items = []
        for new in plan.items:
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
        if plan.reset:
            interval, count = plan.interval
            sub["billing_cycle_anchor"] = now
            subscriptions.set_period(sub, now, interval_step(now, interval, count, 1))
        elif not plan.invoice_now:
            # create_prorations: the lines wait as pending invoice items for the next invoice.
            for change in plan.prorations:
                item_id = change.item_id or self._item_for_price(sub, change.price["id"])
                self.engine.invoices.add_pending_item(sub, change, item_id, emit=True)
        p = plan.params
        if p.get("metadata") is not None:
            sub["metadata"] = merge_metadata(sub["metadata"], p["metadata"])
        if p.get("description") is not None:
            sub["description"] = p["description"] or None
        if p.get("invoice_settings") is not None:
            apply_invoice_settings(sub, p["invoice_settings"])
        if "collection_method" in p:
            sub["collection_method"] = p["collection_method"]
            invoiced = p["collection_method"] == "send_invoice"
            sub["days_until_due"] = p.get("days_until_due") if invoiced else None
        elif p.get("days_until_due") is not None:
            sub["days_until_due"] = p["days_until_due"]
        if p.get("cancellation_details"):
            sub["cancellation_details"].update(p["cancellation_details"])
        if p.get("cancel_at_period_end") is not None:
            subscriptions.set_cancel_at(sub, sub["current_period_end"] if p["cancel_at_period_end"] else None)
        if "cancel_at" in p:
            value = p["cancel_at"]
            if isinstance(value, str) and value:  # min_period_end / max_period_end ...
                value = sub["current_period_end"]
            subscriptions.set_cancel_at(sub, value or None)
        sub["pending_update"] = None

    @staticmethod
    def _item_for_price(sub: Obj, price_id: str) -> str | None:
        return next((i["id"] for i in sub["items"]["data"] if i["price"] == price_id), None)

    # ---------------------------------------------------------------- pending updates
    def apply_pending(self, sub: Obj, invoice_id: str, before: Obj) -> None:
        """The invoice of a pending update was paid: the update takes effect."""
        pending = self._pending.pop(sub["id"], None)
        if pending and pending[1] == invoice_id:
            self._apply(sub, pending[0])
            self.events.emit(
                "customer.subscription.pending_update_applied",
                sub,
                {"pending_update": before["pending_update"]},
            )

    def expire_pending(self, sub: Obj) -> None:
        before = self.engine.render(sub)
        pending = self._pending.pop(sub["id"], None)
        if pending:
            inv = self.store.get(pending[1])
            if inv["status"] == "open":
                self.engine.invoices.void(inv)
        sub["pending_update"] = None
        self.events.emit(
            "customer.subscription.pending_update_expired",
            sub,
            {"pending_update": before["pending_update"]},
        )
