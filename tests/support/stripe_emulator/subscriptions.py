"""Subscriptions: creation, listing, cancellation, renewal and status transitions.

Changing an existing subscription's items (with proration) is :mod:`.changes`; the
invoices a subscription produces are built and charged by :mod:`.invoices`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import objects
from .clock import interval_step, next_period_end
from .errors import invalid, missing_param
from .invoices import subscription_of
from .proration import ItemProration, credit_unused
from .resource import Obj, Objs, Resource, merge_metadata
from .store import created_matches

if TYPE_CHECKING:
    from .engine import Engine

# Stripe lets an incomplete subscription's first invoice be paid for 23 hours.
INCOMPLETE_WINDOW = 23 * 3600
# The first invoice of a subscription that sends invoices stays a draft this long.
DRAFT_WINDOW = 3600
ENDED = ("canceled", "incomplete_expired")
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


def check_intervals(prices: Objs, param: str) -> None:
    """All recurring prices on one subscription share interval and currency."""
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


def check_collection(method: str, p: Obj, behavior: str) -> None:
    """The rules that depend on how the subscription collects payment (create and update)."""
    # Stripe docs: "Pending updates": "Pending updates aren't supported when the
    # subscription's collection_method is send_invoice or when bank debits are used".
    if behavior == "pending_if_incomplete" and method == "send_invoice":
        raise invalid(
            "Pending updates (`payment_behavior=pending_if_incomplete`) are not supported "
            "for subscriptions with `collection_method=send_invoice`.",
            "payment_behavior",
        )
    # SDK docstring of `days_until_due`: "Valid only for subscriptions where
    # `collection_method` is set to `send_invoice`."
    if p.get("days_until_due") is not None and method != "send_invoice":
        raise invalid(
            "`days_until_due` can only be set when `collection_method` is `send_invoice`.",
            "days_until_due",
        )


def apply_invoice_settings(obj: Obj, settings: Obj) -> None:
    """``invoice_settings``: what a subscription's invoices carry (``""`` clears a field),
    set on the subscription, or on an invoice it is billing now."""
    current = obj["invoice_settings"] if obj["object"] == "subscription" else obj
    for key in ("custom_fields", "description", "footer"):
        if key in settings:
            current[key] = settings[key] or None


class Subscriptions(Resource):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        # Every DELETE /v1/subscriptions/{id}, refused or not: tests count retries, which
        # Stripe cannot deduplicate (DELETE takes no idempotency key).
        self.cancel_requests: list[str] = []

    # ---------------------------------------------------------------- helpers
    def interval(self, sub: Obj) -> tuple[str, int]:
        price = self.store.get(sub["items"]["data"][0]["price"])
        return price["recurring"]["interval"], price["recurring"]["interval_count"]

    def set_period(self, sub: Obj, start: int, end: int) -> None:
        sub["current_period_start"], sub["current_period_end"] = start, end
        for item in sub["items"]["data"]:
            item["current_period_start"], item["current_period_end"] = start, end

    def set_cancel_at(self, sub: Obj, cancel_at: int | None) -> None:
        # Current API versions mirror cancel_at_period_end into cancel_at (= period end).
        sub["cancel_at"] = cancel_at
        sub["cancel_at_period_end"] = cancel_at == sub["current_period_end"]
        sub["canceled_at"] = self.now() if cancel_at else None
        reason = "cancellation_requested" if cancel_at else None
        sub["cancellation_details"] = {"comment": None, "feedback": None, "reason": reason}

    # ---------------------------------------------------------------- create
    def create(self, p: Obj) -> Obj:
        if "customer" not in p:
            raise missing_param("customer")
        cust = self.store.get(p["customer"], "customer", "customer")
        items = p.get("items") or []
        if not items:
            raise missing_param("items")
        for i, item in enumerate(items):
            if "price" not in item:
                raise missing_param(f"items[{i}][price]")
            self.store.get(item["price"], "price", f"items[{i}][price]")
        if p.get("default_payment_method"):
            self.engine.payments.check_payment_method(p["default_payment_method"], cust["id"])
        method = p.get("collection_method", "charge_automatically")
        behavior = p.get("payment_behavior", "allow_incomplete")
        check_collection(method, p, behavior)
        trial_end = p.get("trial_end")
        sub, _ = self.start(
            cust,
            items,
            metadata=p.get("metadata") or {},
            trial_days=p.get("trial_period_days"),
            description=p.get("description"),
            trial_end=None if trial_end in (None, "now") else trial_end,
            payment_behavior=behavior,
            default_payment_method=p.get("default_payment_method"),
            collection=(method, p.get("days_until_due")),
            invoice_settings=p.get("invoice_settings") or {},
        )
        if p.get("cancel_at_period_end"):
            self.set_cancel_at(sub, sub["current_period_end"])
        return sub

    def start(
        self,
        cust: Obj,
        items: Objs,
        *,
        metadata: dict[str, str],
        trial_days: int | None,
        description: str | None = None,
        fail_key: str | None = None,
        trial_end: int | None = None,
        payment_behavior: str = "allow_incomplete",
        default_payment_method: str | None = None,
        collection: tuple[str, int | None] = ("charge_automatically", None),
        invoice_settings: Obj | None = None,
    ) -> tuple[Obj, Obj]:
        """Create a subscription and bill its first invoice (from the API or Checkout).

        ``collection`` is (``collection_method``, ``days_until_due``). SDK docstring of
        ``collection_method``: "When sending an invoice, Stripe will email your customer an
        invoice with payment instructions and mark the subscription as `active`": the
        first invoice is finalized and sent (``invoice.sent``) an hour later, nothing is
        charged.
        """
        invoices = self.engine.invoices
        now = self.now()
        prices = [self.store.get(i["price"]) for i in items]
        check_intervals(prices, "items")
        sub = objects.subscription(now, cust["id"], prices[0]["currency"])
        sub["metadata"] = merge_metadata({}, metadata)
        sub["description"] = description
        sub["default_payment_method"] = default_payment_method
        method, days_until_due = collection
        sub["collection_method"] = method
        sub["days_until_due"] = days_until_due if method == "send_invoice" else None
        apply_invoice_settings(sub, invoice_settings or {})
        for item, price in zip(items, prices, strict=True):
            sub["items"]["data"].append(
                objects.subscription_item(now, sub["id"], price["id"], item.get("quantity", 1))
            )
        sub["items"]["total_count"] = len(items)
        interval, count = self.interval(sub)
        if trial_days:
            trial_end = now + trial_days * 86400
        if trial_end:
            sub.update(status="trialing", trial_start=now, trial_end=trial_end)
            sub["billing_cycle_anchor"] = trial_end
            self.set_period(sub, now, trial_end)
        else:
            self.set_period(sub, now, interval_step(now, interval, count, 1))
        self.store.add("subscriptions", sub)
        inv = invoices.build(sub, "subscription_create", sub["current_period_start"])
        for item in sub["items"]["data"]:
            invoices.add_period_line(
                inv, sub, item, sub["current_period_start"], sub["current_period_end"], trial=bool(trial_end)
            )
        sub["latest_invoice"] = inv["id"]
        if method == "send_invoice":
            # Stripe docs, "Subscription invoices": Stripe "Finalizes the invoice immediately
            # when collection_method is set to charge_automatically, or one hour later when
            # it's set to send_invoice." Until then it is a draft (the timeline sends it).
            inv["automatically_finalizes_at"] = now + DRAFT_WINDOW
            if not trial_end:
                sub["status"] = "active"
            self.events.emit("customer.subscription.created", sub)
            self.events.emit("invoice.created", inv)
            return sub, inv
        attempt = payment_behavior != "default_incomplete"
        paid = invoices.attempt_payment(inv, fail_key or sub["id"], attempt=attempt)
        if not paid and payment_behavior == "error_if_incomplete":
            error = self.engine.payments.incomplete_error(inv, subscription=True)
            invoices.void(inv, emit=False, remove=True)
            self.store.remove("subscriptions", sub["id"])
            raise error
        if not trial_end:
            sub["status"] = "active" if paid else "incomplete"
        self.events.emit("customer.subscription.created", sub)
        invoices.emit_outcome(inv, paid, attempted=attempt)
        return sub, inv

    def list(self, p: Obj) -> Objs:
        status = p.get("status")

        def keep(s: Obj) -> bool:
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

    # ---------------------------------------------------------------- end
    def cancel(self, sub_id: str, p: Obj) -> Obj:
        self.cancel_requests.append(sub_id)
        sub = self.store.get(sub_id, "subscription")
        if sub["status"] in ENDED:
            raise invalid(
                f"A canceled subscription can't be canceled again ({sub_id}).",
                code="resource_missing" if sub["status"] == "canceled" else None,
            )
        invoices = self.engine.invoices
        now = self.now()
        if p.get("prorate") and sub["status"] != "trialing":
            start, end = sub["current_period_start"], sub["current_period_end"]
            for item in sub["items"]["data"]:
                price = self.store.get(item["price"])
                line = credit_unused(price["unit_amount"], item["quantity"], start, end, now)
                if line.amount:
                    credit = ItemProration(item["id"], price, item["quantity"], line)
                    invoices.add_pending_item(sub, credit, item["id"], emit=False)
        details = p.get("cancellation_details") or {}
        self.end(sub, "canceled", reason="cancellation_requested", details=details)
        if p.get("invoice_now"):
            inv = invoices.build(sub, "subscription_update", now)
            invoices.sweep_pending(inv, sub)
            if inv["lines"]["data"] and sub["collection_method"] == "send_invoice":
                sub["latest_invoice"] = inv["id"]
                invoices.emit_outcome(inv, invoices.send(inv, sub["days_until_due"]), attempted=False)
            elif inv["lines"]["data"]:
                sub["latest_invoice"] = inv["id"]
                invoices.emit_outcome(inv, invoices.attempt_payment(inv, sub["id"]))
            else:
                self.store.remove("invoices", inv["id"])
        return sub

    def end(self, sub: Obj, status: str, *, reason: str | None = None, details: Obj | None = None) -> None:
        now = self.now()
        sub["status"] = status
        sub["ended_at"] = now
        if status == "canceled":
            sub["canceled_at"] = sub["canceled_at"] or now
        sub["pending_update"] = None
        if reason:
            sub["cancellation_details"]["reason"] = reason
        if details:
            sub["cancellation_details"].update(details)
        self.events.emit("customer.subscription.deleted", sub)

    def expire_incomplete(self, sub: Obj) -> None:
        inv = self.store.get(sub["latest_invoice"]) if sub["latest_invoice"] else None
        if inv and inv["status"] == "open":
            self.engine.invoices.void(inv)
        self.end(sub, "incomplete_expired")

    # ---------------------------------------------------------------- billing cycle
    def renew(self, sub: Obj) -> None:
        """The period ended: roll it over and bill the next one (or end, if asked to)."""
        if sub["cancel_at_period_end"]:
            self.end(sub, "canceled", reason="cancellation_requested")
            return
        invoices = self.engine.invoices
        before = self.engine.render(sub)
        previous_start, start = sub["current_period_start"], sub["current_period_end"]
        interval, count = self.interval(sub)
        if sub["status"] == "trialing":
            sub["status"] = "active"
            sub["billing_cycle_anchor"] = start
        end = next_period_end(sub["billing_cycle_anchor"], interval, count, start)
        self.set_period(sub, start, end)
        self.events.emit_updated("customer.subscription.updated", sub, before)
        inv = invoices.build(sub, "subscription_cycle", previous_start)
        inv["period_end"] = start
        invoices.sweep_pending(inv, sub)
        for item in sub["items"]["data"]:
            invoices.add_period_line(inv, sub, item, start, end)
        sub["latest_invoice"] = inv["id"]
        if sub["status"] == "unpaid":
            # Stripe keeps billing unpaid subscriptions but leaves the invoices as drafts.
            self.events.emit("invoice.created", inv)
            return
        before = self.engine.render(sub)
        # SDK docstring of `collection_method`: "When sending an invoice, Stripe will email
        # your customer an invoice with payment instructions and mark the subscription as
        # `active`": nothing is charged, the customer pays by the due date.
        if sub["collection_method"] == "send_invoice":
            invoices.emit_outcome(inv, invoices.send(inv, sub["days_until_due"]), attempted=False)
            return
        paid = invoices.attempt_payment(inv, sub["id"])
        invoices.emit_outcome(inv, paid)
        if paid:
            return
        if sub["status"] == "active":
            sub["status"] = "past_due"
            self.events.emit_updated("customer.subscription.updated", sub, before)
        self.engine.retries.settle(sub, inv)

    def invoice_paid(self, sub: Obj, inv: Obj) -> None:
        """A late payment went through: apply a pending change, recover the status."""
        before = self.engine.render(sub)
        self.engine.changes.apply_pending(sub, inv["id"], before)
        # an invoice sent to be paid by a due date still ahead is not late: it keeps nothing past due
        open_left = [
            i
            for i in self.store.all("invoices")
            if i["status"] == "open"
            and subscription_of(i) == sub["id"]
            and (i["due_date"] is None or i["due_date"] <= self.now())
        ]
        if sub["status"] in ("incomplete", "past_due", "unpaid") and not open_left:
            sub["status"] = "active"
        self.events.emit_updated("customer.subscription.updated", sub, before)

    def invoice_overdue(self, inv: Obj) -> None:
        """A sent invoice passed its due date unpaid (the timeline, at ``due_date``).

        SDK docstring of Subscription.status: "If subscription `collection_method=send_invoice`
        it becomes `past_due` when its invoice is not paid by the due date". Stripe then
        sends ``invoice.overdue`` (its Dashboard can delay that by some days; none here).
        Stripe's further deadline after which the subscription is canceled or marked unpaid
        is an account setting, left at "leave it past due".
        """
        self.engine.invoices.overdue.add(inv["id"])
        sub_id = subscription_of(inv)
        sub = self.store.find(sub_id, "subscription") if sub_id else None
        if sub is not None and sub["status"] in ("active", "trialing"):
            before = self.engine.render(sub)
            sub["status"] = "past_due"
            self.events.emit_updated("customer.subscription.updated", sub, before)
        self.events.emit("invoice.overdue", inv)

    # ---------------------------------------------------------------- test hooks
    def set_status(self, sub_id: str, status: str) -> None:
        if status not in SUBSCRIPTION_STATUSES:
            raise ValueError(f"unknown subscription status {status}")
        sub = self.store.get(sub_id, "subscription")
        if status in ENDED:
            self.end(sub, status)
            return
        before = self.engine.render(sub)
        sub["status"] = status
        self.events.emit_updated("customer.subscription.updated", sub, before)
