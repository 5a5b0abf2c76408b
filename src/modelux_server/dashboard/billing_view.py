"""What the Billing pages show, computed from the billing summary, the catalog and previews.

Pure functions (no I/O), so the rules for buttons and meters are easy to
read in one place and to test without a browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from modelux_server.billing.summary import BillingSummary
from modelux_server.plans.catalog import FEATURES, LIMIT_NAMES, Catalog, Plan

WARN_AT = 80.0  # percent: amber from here (the soft-nudge email threshold)


@dataclass(frozen=True)
class Meter:
    name: str
    used: int
    limit: int | None
    percent: float  # 0-100, for the bar width
    level: str  # "ok", "warn" or "full"
    resets_at: datetime | None

    @property
    def unlimited(self) -> bool:
        return self.limit is None


@dataclass(frozen=True)
class PlanCard:
    plan: Plan
    price_cents: int | None
    saving_cents: int | None  # the annual saving, when annual is shown
    action: str  # "current", "checkout", "change", "contact" or "none"
    action_label: str
    highlighted: bool


def meters(summary: BillingSummary) -> list[Meter]:
    rows = []
    for name in LIMIT_NAMES:
        raw = summary.meters[name]
        limit, used = raw.limit, raw.used
        if limit is None:
            percent, level = 0.0, "ok"
        else:
            percent = 100.0 if limit == 0 else min(100.0, 100 * used / limit)
            level = "full" if used >= limit else "warn" if percent >= WARN_AT else "ok"
        rows.append(Meter(name, used, limit, round(percent, 1), level, raw.resets_at))
    return rows


def _is_current(plan: Plan, interval: str, summary: BillingSummary) -> bool:
    current = summary.plan
    if plan.id != current.id:
        return False
    # a free plan has no interval worth switching
    return not plan.monthly_price_cents or interval == current.interval


def _rank(catalog: Catalog, plan_id: str) -> int:
    ordered = [p.id for p in catalog.ordered()]
    return ordered.index(plan_id) if plan_id in ordered else len(ordered)


def change_label(catalog: Catalog, summary: BillingSummary, plan: Plan, interval: str) -> str:
    current = summary.plan.id
    if plan.id == current:
        return f"Switch to {interval} billing"
    verb = "Upgrade" if _rank(catalog, plan.id) > _rank(catalog, current) else "Downgrade"
    return f"{verb} to {plan.name}"


def plan_cards(
    catalog: Catalog, summary: BillingSummary, interval: str, highlight: str | None
) -> list[PlanCard]:
    cards = []
    for plan in catalog.ordered():
        price = plan.price_cents(interval)
        saving = None
        if interval == "annual" and plan.monthly_price_cents and plan.annual_price_cents is not None:
            saving = plan.monthly_price_cents * 12 - plan.annual_price_cents
        action, text = _action(catalog, summary, plan, interval)
        cards.append(PlanCard(plan, price, saving, action, text, highlighted=plan.id == highlight))
    return cards


def _action(catalog: Catalog, summary: BillingSummary, plan: Plan, interval: str) -> tuple[str, str]:
    if not plan.self_serve:
        return "contact", "Contact sales"
    if summary.custom_plan is not None:
        # an Enterprise organization's plan is managed with sales, not here
        return "none", ""
    if _is_current(plan, interval, summary):
        return "current", "Current plan"
    if summary.billing_mode != "stripe":
        # no payment processor: Checkout and plan changes could only answer an error
        return "none", ""
    if not summary.has_subscription and plan.monthly_price_cents:
        return "checkout", f"Upgrade to {plan.name}"
    return "change", change_label(catalog, summary, plan, interval)


@dataclass(frozen=True)
class Impact:
    """What a plan change does, for the confirmation page."""

    direction: str  # "upgrade", "downgrade" or "interval"
    features_lost: list[str]
    features_gained: list[str]
    over_limit: list[tuple[str, int, int]]  # (limit name, used, new limit)


def impact(catalog: Catalog, summary: BillingSummary, target: Plan) -> Impact:
    current_id = summary.plan.id
    if target.id == current_id:
        direction = "interval"
    elif _rank(catalog, target.id) > _rank(catalog, current_id):
        direction = "upgrade"
    else:
        direction = "downgrade"
    has = summary.features
    lost = [f for f in FEATURES if has.get(f) and f not in target.features]
    gained = [f for f in FEATURES if not has.get(f) and f in target.features]
    over = []
    for name in LIMIT_NAMES:
        new_limit = target.limit(name)
        used = summary.meters[name].used
        if name != "monthly_requests" and new_limit is not None and used > new_limit:
            over.append((name, used, new_limit))
    return Impact(direction, lost, gained, over)


# The policy in docs/decisions/0005-refunds-when-leaving.md, as the confirmation step states it.
REFUND_POLICY = (
    "Your subscription ends now. The unused part of the period you paid for is refunded to your "
    "card (Stripe issues a credit note on that invoice); time whose invoice was not paid is not refunded."
)

# Stripe prorates to the second: a change confirmed a minute after the preview
# is billed for a minute less of the period.
# Stripe docs: billing/scripts/prorations: "Stripe calculates proration down to the
# second based on the starting timestamp of the billing period and the timestamp
# of the proration's triggering event".
PRORATION_NOTE = "Stripe prorates to the second, so the amount when you confirm can differ by a few cents."

# The payment errors' messages name API endpoints; on the page the same facts
# point at the page's own buttons.
PAYMENT_WORDS = {
    "payment_action_required": (
        "Your bank asks you to confirm this payment (3-D Secure). Your plan has not changed yet: "
        "it changes as soon as the payment is confirmed."
    ),
    "payment_failed": (
        "Your card was declined, so the plan did not change. Update your payment method and try again."
    ),
    "payment_past_due": (
        "Your last renewal is not paid yet, so the plan cannot change. Update your payment method "
        "and pay the open invoice first, or move to the Free plan."
    ),
}


@dataclass(frozen=True)
class Settlement:
    """The one sentence a plan-change preview leads with: what happens to money now."""

    kind: str  # "charge", "credit", "refund" or "none"
    cents: int


def settlement(amount_due: int, credit: int, refund: int) -> Settlement:
    if amount_due > 0:
        return Settlement("charge", amount_due)
    if refund > 0:
        return Settlement("refund", refund)
    if credit > 0:
        return Settlement("credit", credit)
    return Settlement("none", 0)


def tax_ids(summary: BillingSummary) -> list[tuple[str, str]]:
    """(type, value) of each tax ID, the type as people write it: `eu_vat` -> `EU VAT`."""
    return [(t.type.replace("_", " ").upper(), t.value) for t in summary.tax_ids]


def invoice_level(status: str) -> str:
    """The badge colour of an invoice status: paid is good, open needs attention."""
    return {"paid": "good", "open": "warn", "uncollectible": "bad"}.get(status, "neutral")
