"""Stripe's JSON -> our value objects: what the gateway reads from each object it gets back.

Plain dictionaries in, `billing.processor` value objects out; no SDK import,
so the shapes of the pinned API version (gateway.API_VERSION) are read in
one place and tested without a network.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from modelux_server.billing.processor import (
    ChangePreview,
    CheckoutView,
    InvoiceView,
    PreviewLine,
    PriceRef,
    SubscriptionView,
)


def _ts(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(int(value), UTC)


def subscription_view(raw: Mapping[str, Any]) -> SubscriptionView:
    """Read the fields we rely on, wherever this API version keeps them."""
    item = raw["items"]["data"][0]
    price = item["price"]
    if isinstance(price, str):  # not expanded: only the id is known
        price = {"id": price}
    recurring = price.get("recurring") or {}
    anchor = _ts(raw.get("billing_cycle_anchor")) or _ts(raw.get("start_date"))
    assert anchor is not None, "a subscription always has an anchor"
    latest = raw.get("latest_invoice")
    return SubscriptionView(
        id=raw["id"],
        customer_id=raw["customer"] if isinstance(raw["customer"], str) else raw["customer"]["id"],
        status=raw["status"],
        item_id=item["id"],
        price=PriceRef(
            id=price["id"],
            lookup_key=price.get("lookup_key"),
            metadata=dict(price.get("metadata") or {}),
            recurring_interval=recurring.get("interval"),
            unit_amount=price.get("unit_amount"),
            recurring_interval_count=int(recurring.get("interval_count") or 1),
            currency=price.get("currency"),
        ),
        billing_cycle_anchor=anchor,
        # Basil-era versions keep the period on the item; older ones on the subscription
        current_period_start=_ts(item.get("current_period_start") or raw.get("current_period_start")),
        current_period_end=_ts(item.get("current_period_end") or raw.get("current_period_end")),
        cancel_at_period_end=bool(raw.get("cancel_at_period_end")),
        metadata=dict(raw.get("metadata") or {}),
        latest_invoice_id=latest if isinstance(latest, str) or latest is None else latest["id"],
        has_pending_update=raw.get("pending_update") is not None,
        created=_ts(raw.get("created")),
        cancellation_reason=(raw.get("cancellation_details") or {}).get("reason"),
        ended_at=_ts(raw.get("ended_at")),
    )


def checkout_view(raw: Mapping[str, Any]) -> CheckoutView:
    return CheckoutView(
        id=raw["id"],
        url=raw.get("url"),
        status=raw.get("status") or "open",
        customer_id=raw.get("customer"),
        subscription_id=raw.get("subscription"),
        client_reference_id=raw.get("client_reference_id"),
        metadata=dict(raw.get("metadata") or {}),
    )


def invoice_view(raw: Mapping[str, Any]) -> InvoiceView:
    details = (raw.get("parent") or {}).get("subscription_details") or {}
    periods = [line.get("period") or {} for line in (raw.get("lines") or {}).get("data") or []]
    starts = [p["start"] for p in periods if p.get("start")]
    ends = [p["end"] for p in periods if p.get("end")]
    created = _ts(raw.get("created"))
    assert created is not None, "every invoice has a creation time"
    return InvoiceView(
        id=raw["id"],
        customer_id=raw["customer"] if isinstance(raw["customer"], str) else raw["customer"]["id"],
        number=raw.get("number"),
        status=raw.get("status") or "draft",
        created=created,
        # the service period is the lines'; the invoice's own period_start/end is
        # when items could be added to it (SDK docstring: "Use the line item
        # period to get the service period")
        period_start=_ts(min(starts)) if starts else _ts(raw.get("period_start")),
        period_end=_ts(max(ends)) if ends else _ts(raw.get("period_end")),
        currency=raw.get("currency") or "usd",
        total=int(raw.get("total") or 0),
        tax=sum(int(t.get("amount") or 0) for t in raw.get("total_taxes") or []),
        amount_due=int(raw.get("amount_due") or 0),
        amount_paid=int(raw.get("amount_paid") or 0),
        credited=int(raw.get("post_payment_credit_notes_amount") or 0),
        billing_reason=raw.get("billing_reason"),
        subscription_id=details.get("subscription"),
        hosted_invoice_url=raw.get("hosted_invoice_url"),
        invoice_pdf=raw.get("invoice_pdf"),
        paid_from_balance=_paid_from_balance(raw),
        due_date=_ts(raw.get("due_date")),
        paid_at=_ts((raw.get("status_transitions") or {}).get("paid_at")),
        custom_fields=tuple(
            (str(field.get("name") or ""), str(field.get("value") or ""))
            for field in raw.get("custom_fields") or []
        ),
    )


def _paid_from_balance(raw: Mapping[str, Any]) -> int:
    """The customer credit finalization applied to the invoice (0 before finalization).

    A credit is a negative balance: `starting_balance` -1000 and `ending_balance` 0
    mean 1000 of credit paid part of the invoice and the card paid the rest. A debit
    (positive balance) collected by the invoice is not credit, so it counts as 0.
    """
    if raw.get("ending_balance") is None:
        return 0
    return max(0, int(raw["ending_balance"]) - int(raw.get("starting_balance") or 0))


def change_preview(raw: Mapping[str, Any]) -> ChangePreview:
    lines = [
        PreviewLine(description=str(line.get("description") or ""), amount=int(line.get("amount") or 0))
        for line in (raw.get("lines") or {}).get("data") or []
    ]
    return ChangePreview(
        currency=raw.get("currency") or "usd",
        lines=lines,
        total=int(raw.get("total") or 0),
        amount_due=int(raw.get("amount_due") or 0),
    )
