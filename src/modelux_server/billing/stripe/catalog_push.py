"""Us -> Stripe (`modelux admin stripe-sync`): the plan catalog, mirrored into Stripe.

Data only flows out from here; what Stripe reports back about subscriptions
comes in through apply.py.

One Product per paid self-serve plan (id `modelux_<plan>`), a monthly and an
annual Price for it (lookup keys `modelux_<plan>_monthly` / `_annual`;
annual = 10 x monthly unless the catalog says otherwise), and one customer-
portal configuration that lets customers switch between exactly those prices
with the same proration as our API. Free needs nothing in Stripe.

Idempotent: every object is found by a key we choose, compared, and only
created or updated when it differs, so a second run reports no changes.
Prices are immutable in Stripe: a new amount makes a new Price that takes
over the lookup key; the old one is deactivated and keeps billing existing
subscriptions, which still map to their plan through the price metadata.
"""

from __future__ import annotations

from typing import Any

from modelux_server.billing.processor import STRIPE_INTERVALS, lookup_key
from modelux_server.billing.stripe.gateway import PORTAL_MARK, StripeBilling
from modelux_server.billing.stripe.webhooks import EVENT_TYPES
from modelux_server.plans.catalog import INTERVALS, Plan
from modelux_server.services import Services

CURRENCY = "usd"


def product_id(plan_id: str) -> str:
    return f"modelux_{plan_id}"


def annual_cents(plan: Plan) -> int:
    monthly = plan.monthly_price_cents or 0
    return plan.annual_price_cents if plan.annual_price_cents is not None else 10 * monthly


async def sync_catalog(rt: Services, stripe: StripeBilling) -> list[str]:
    """Create or update what differs; returns one line per change (empty: all in sync)."""
    changes: list[str] = []
    portal_products: list[dict[str, Any]] = []
    for plan in rt.catalog.self_serve():
        if not plan.monthly_price_cents:
            continue
        await _sync_product(stripe, plan, changes)
        prices = [await _sync_price(stripe, plan, interval, changes) for interval in INTERVALS]
        portal_products.append({"product": product_id(plan.id), "prices": prices})
    await _sync_portal(stripe, portal_products, changes)
    return changes


async def _sync_product(stripe: StripeBilling, plan: Plan, changes: list[str]) -> None:
    want: dict[str, Any] = {"name": f"modelux {plan.name}", "metadata": {"modelux_plan": plan.id}}
    if plan.description:
        want["description"] = plan.description
    pid = product_id(plan.id)
    have = await stripe.retrieve_product(pid)
    if have is None:
        await stripe.create_product({"id": pid, **want})
        changes.append(f"created product {pid} ({want['name']})")
        return
    update = {k: v for k, v in want.items() if not _contains(have.get(k), v)}
    if not have.get("active", True):
        update["active"] = True
    if update:
        await stripe.update_product(pid, update)
        changes.append(f"updated product {pid}: {', '.join(sorted(update))}")


async def _sync_price(stripe: StripeBilling, plan: Plan, interval: str, changes: list[str]) -> str:
    key = lookup_key(plan.id, interval)
    amount = annual_cents(plan) if interval == "annual" else plan.monthly_price_cents or 0
    metadata = {"modelux_plan": plan.id, "modelux_interval": interval}
    found = await stripe.prices_by_lookup_keys([key])
    have = found[0] if found else None
    if have is not None and _price_matches(have, plan.id, amount, interval):
        update: dict[str, Any] = {}
        if not have.get("active"):
            update["active"] = True
        if not _contains(have.get("metadata"), metadata):
            update["metadata"] = metadata
        if update:
            await stripe.update_price(have["id"], update)
            changes.append(f"updated price {key} ({have['id']}): {', '.join(sorted(update))}")
        return str(have["id"])
    created = await stripe.create_price(
        {
            "product": product_id(plan.id),
            "unit_amount": amount,
            "currency": CURRENCY,
            "recurring": {"interval": STRIPE_INTERVALS[interval]},
            "lookup_key": key,
            "transfer_lookup_key": True,
            "metadata": metadata,
            "nickname": f"{plan.name} {interval}",
        }
    )
    changes.append(f"created price {key} ({created['id']}): {amount / 100:.2f} {CURRENCY.upper()}/{interval}")
    if have is not None and have.get("active"):
        # kept for the subscriptions already on it; no new checkout can pick it
        await stripe.update_price(have["id"], {"active": False})
        changes.append(f"deactivated old price {have['id']} (was {key})")
    return str(created["id"])


def _price_matches(price: dict[str, Any], plan_id: str, amount: int, interval: str) -> bool:
    recurring = price.get("recurring") or {}
    return (
        price.get("product") == product_id(plan_id)
        and price.get("unit_amount") == amount
        and price.get("currency") == CURRENCY
        and recurring.get("interval") == STRIPE_INTERVALS[interval]
        and (recurring.get("interval_count") or 1) == 1
    )


async def _sync_portal(stripe: StripeBilling, products: list[dict[str, Any]], changes: list[str]) -> None:
    """The portal switches plans the way change-plan does: now, proration invoiced now.

    No `schedule_at_period_end`: the seed makes downgrades immediate too.
    Cancelling ends the subscription now, the same as leaving to Free through
    our API: no proration credit (`none`; a Free organization has no invoice
    to spend it on), and the unused time is refunded to the card when the
    cancellation's webhook arrives (refunds.py). Stripe accepts only `none` or
    `create_prorations` here, never `always_invoice`.
    The plan-switch list is exactly the catalog's self-serve prices (`products`).
    """
    features: dict[str, Any] = {
        "customer_update": {"enabled": True, "allowed_updates": ["address", "email", "name", "tax_id"]},
        "invoice_history": {"enabled": True},
        "payment_method_update": {"enabled": True},
        "subscription_cancel": {
            "enabled": True,
            "mode": "immediately",
            "proration_behavior": "none",
        },
        "subscription_update": {
            "enabled": bool(products),
            "default_allowed_updates": ["price"] if products else [],
            "proration_behavior": "always_invoice",
            "products": products,
        },
    }
    # no default_return_url: every portal session we create names its own
    want: dict[str, Any] = {"features": features, "metadata": PORTAL_MARK}
    ours = [c for c in await stripe.portal_configurations() if _contains(c.get("metadata"), PORTAL_MARK)]
    if not ours:
        conf = await stripe.create_portal_configuration(want)
        changes.append(f"created customer portal configuration {conf['id']}")
        return
    have = ours[0]
    update = {k: v for k, v in want.items() if not _contains(have.get(k), v)}
    if update:
        await stripe.update_portal_configuration(have["id"], update)
        changes.append(f"updated customer portal configuration {have['id']}: {', '.join(sorted(update))}")


def _contains(have: Any, want: Any) -> bool:
    """Whether Stripe's object already says everything we want (it may say more)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(_contains(have.get(k), v) for k, v in want.items())
    if isinstance(want, list):
        if not isinstance(have, list) or len(have) != len(want):
            return False
        if all(isinstance(w, str) for w in want):
            return sorted(have) == sorted(want)
        return all(any(_contains(h, w) for h in have) for w in want)
    return bool(have == want)


def webhook_events() -> list[str]:
    """The event types to subscribe the webhook endpoint to (printed by the CLI)."""
    return list(EVENT_TYPES)
