"""What billing tells other domains, and the shape of a subscriber.

Billing publishes; notifications (and whoever else needs to) subscribe in
assembly.py, on `Services`. Billing imports none of its subscribers, which
keeps it out of their import graph.

Every subscriber runs inside the publisher's transaction, before it commits,
and may write but never commits: what it writes (an outbox row) exists if and
only if the billing change does. In-process caches are dropped after the
commit instead (`Services.invalidate`). docs/decisions/0004-plan-change-events.md
says why.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.services import Services

if TYPE_CHECKING:
    from modelux_server.billing.processor import BillingProcessor, WebhookEvent


@dataclass(frozen=True)
class PlanChanged:
    """An organization moved to another plan, interval or custom plan (billing/plan_changes.py)."""

    org_id: str
    change_id: str  # the `PlanChange` row, written in the same transaction
    from_plan: str
    to_plan: str
    from_interval: str
    to_interval: str
    source: str  # "api", "dashboard", "mcp", "webhook", "portal", "reconcile", "operator"
    actor: str | None
    at: datetime
    # the custom plans on either side, so a subscriber can name an Enterprise
    # plan and its features (the catalog id alone says "enterprise")
    from_custom_plan_id: str | None
    to_custom_plan_id: str | None


@dataclass(frozen=True)
class PaymentFailed:
    """One failed attempt to pay one invoice (billing/stripe/webhooks.py).

    Stripe sends one event per attempt; `(invoice_id, attempt)` names it.
    """

    org_id: str
    invoice_id: str
    attempt: int
    amount_due_cents: int
    currency: str
    next_attempt_at: datetime | None  # None: Stripe will not retry
    # the invoice's payment page, when the bank wants the customer to authenticate (3-D Secure)
    action_url: str | None = None


PlanChangeSubscriber = Callable[[AsyncSession, Services, PlanChanged], Awaitable[None]]
PaymentFailedSubscriber = Callable[[AsyncSession, Services, PaymentFailed], Awaitable[None]]


@dataclass(frozen=True)
class Routed:
    """A Stripe event another domain took over (a `StripeEventRoute` said it is its own).

    `org_id` is recorded with the event; `then` runs once the event's transaction has
    committed (Stripe calls the effect leads to: none may run while the organization is
    locked), and a failure there is logged, the event staying applied.
    """

    org_id: str | None
    then: Callable[[], Awaitable[None]] | None = None


# Asked first for every Stripe event of a subscription or an invoice, in the
# webhook's transaction: None leaves the event to billing's own handlers. Used
# for subscriptions billing does not follow (an Enterprise plan's invoicing).
StripeEventRoute = Callable[
    [AsyncSession, Services, "BillingProcessor", "WebhookEvent"], Awaitable[Routed | None]
]
