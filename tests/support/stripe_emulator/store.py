"""In-memory object store: Stripe-style ids, per-type collections, list pagination."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Iterable
from typing import Any

from .errors import StripeApiError, missing

_ALPHABET = string.ascii_letters + string.digits

# Human names used in "No such ..." errors, keyed by id prefix.
KIND_BY_PREFIX = {
    "cus_": "customer",
    "prod_": "product",
    "price_": "price",
    "cs_": "checkout.session",
    "sub_": "subscription",
    "si_": "subscription item",
    "in_": "invoice",
    "ii_": "invoiceitem",
    "il_": "line_item",
    "evt_": "event",
    "bps_": "billing_portal.session",
    "bpc_": "billing_portal.configuration",
    "txi_": "tax_id",
    "pm_": "payment_method",
    "pi_": "payment_intent",
    "inpay_": "invoice_payment",
    "ch_": "charge",
    "re_": "refund",
    "cn_": "credit_note",
    "cbtxn_": "customer_balance_transaction",
}


def new_id(prefix: str) -> str:
    # Real ids are prefix + 14..24 base62 characters; checkout sessions carry "cs_test_".
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(24))


class Store:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        # Insertion order per collection; lists are newest first, like Stripe's.
        self.order: dict[str, list[str]] = {}

    def add(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.objects[obj["id"]] = obj
        self.order.setdefault(collection, []).append(obj["id"])
        return obj

    def get(self, object_id: str, kind: str | None = None, param: str = "id") -> dict[str, Any]:
        obj = self.objects.get(object_id)
        expected = kind or _kind_for(object_id)
        if obj is None or (kind is not None and obj.get("object") != kind):
            raise missing(expected, object_id, param)
        return obj

    def find(self, object_id: str, kind: str) -> dict[str, Any] | None:
        """The object, or None when there is no such id or it is not a ``kind``."""
        obj = self.objects.get(object_id)
        return obj if obj is not None and obj.get("object") == kind else None

    def remove(self, collection: str, object_id: str) -> None:
        self.order[collection].remove(object_id)
        del self.objects[object_id]

    def all(self, collection: str) -> list[dict[str, Any]]:
        return [self.objects[i] for i in self.order.get(collection, [])]


def _kind_for(object_id: str) -> str:
    for prefix, kind in KIND_BY_PREFIX.items():
        if object_id.startswith(prefix):
            return kind
    return "object"


def paginate(
    items: Iterable[dict[str, Any]],
    params: dict[str, Any],
    url: str,
    render: Callable[[dict[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    """Stripe list envelope with limit / starting_after / ending_before (newest first)."""
    data = list(reversed(list(items)))
    limit = params.get("limit", 10)
    if not 1 <= limit <= 100:
        raise StripeApiError(
            "Invalid limit: must be between 1 and 100",
            param="limit",
            code="parameter_invalid_integer",
        )
    ids = [o["id"] for o in data]
    if "starting_after" in params:
        cursor = params["starting_after"]
        if cursor not in ids:
            raise missing(_kind_for(cursor), cursor, "starting_after")
        data = data[ids.index(cursor) + 1 :]
        page = data[:limit]
        has_more = len(data) > limit
    elif "ending_before" in params:
        cursor = params["ending_before"]
        if cursor not in ids:
            raise missing(_kind_for(cursor), cursor, "ending_before")
        data = data[: ids.index(cursor)]
        page = data[-limit:]
        has_more = len(data) > limit
    else:
        page = data[:limit]
        has_more = len(data) > limit
    return {"object": "list", "data": [render(o) for o in page], "has_more": has_more, "url": url}


def created_matches(created: int, flt: Any) -> bool:
    """Stripe's ``created`` filter: an exact int or a dict of gt/gte/lt/lte."""
    if flt is None:
        return True
    if isinstance(flt, int):
        return created == flt
    checks = {
        "gt": created > flt.get("gt", created - 1),
        "gte": created >= flt.get("gte", created),
        "lt": created < flt.get("lt", created + 1),
        "lte": created <= flt.get("lte", created),
    }
    return all(checks.values())
