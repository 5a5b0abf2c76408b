"""Automatic payment retries of a subscription's failed invoice, and what ends them.

When an automatic charge of a renewal (or other post-creation) invoice fails, the
subscription goes ``past_due`` and Stripe retries *the same invoice* on a schedule; each
retry is one more attempt (``attempt_count``), announced by ``invoice.payment_failed`` or
``invoice.paid``. ``next_payment_attempt`` says when the next one runs and is ``null``
after the last. A paid retry makes the subscription ``active`` again; once every retry
failed, the account's setting decides the subscription's fate.

SDK docstring of ``Subscription.status``: "Once Stripe has exhausted all payment retry
attempts, the subscription will become `canceled` or `unpaid` (depending on your
subscriptions settings)"; Stripe docs, "Automate payment retries": the Dashboard also
offers to leave it ``past_due``. The retries run from :mod:`.timeline`, in time order
with renewals, like a test clock.

What is not retried here: the first invoice of an ``incomplete`` subscription (it has its
own 23-hour window, then ``incomplete_expired``) and ``send_invoice`` invoices (the
customer pays them; ``next_payment_attempt`` is null for them, SDK docstring).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .invoices import subscription_of
from .resource import Obj, Resource
from .subscriptions import ENDED

if TYPE_CHECKING:
    from .engine import Engine

DAY = 86400
OUTCOMES = ("canceled", "unpaid", "past_due")


@dataclass(frozen=True)
class RetryPolicy:
    """When to retry a failed invoice, and what happens to its subscription after the last retry.

    ``days[i]`` is the delay of retry ``i + 1`` after the attempt before it (the first
    attempt being the one that failed at renewal), like a custom retry schedule in the
    Dashboard; ``then`` is ``canceled``, ``unpaid`` or ``past_due``.
    """

    days: tuple[float, ...]
    then: str

    def __post_init__(self) -> None:
        if self.then not in OUTCOMES:
            raise ValueError(f"then must be one of {', '.join(OUTCOMES)}, not {self.then!r}")
        if any(d <= 0 for d in self.days):
            raise ValueError("retry delays must be positive")


# Stripe docs, "Smart Retries on Off-Session Payments": "The recommended default is 8
# tries within 2 weeks"; "Automate payment retries": "We enable Smart Retries by default
# for new Stripe accounts." Smart Retries picks its own instants; this fixed schedule
# spreads the 8 retries over the same 14 days so tests stay deterministic. What the
# subscription becomes after the last retry by default is not stated in the pages found;
# `canceled` is an assumption (believed to be the Dashboard's preselected choice).
DEFAULT_RETRY_POLICY = RetryPolicy(days=(1, 1, 2, 2, 2, 2, 2, 2), then="canceled")


class Retries(Resource):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.policy = DEFAULT_RETRY_POLICY

    def retried(self, inv: Obj) -> bool:
        """Whether a failed automatic charge of this invoice is retried at all."""
        return (
            subscription_of(inv) is not None
            and inv["collection_method"] == "charge_automatically"
            and inv["billing_reason"] != "subscription_create"
        )

    def schedule(self, inv: Obj) -> int | None:
        """After a failed automatic attempt: when the next retry runs (None after the last)."""
        if not self.retried(inv):
            return None
        done = inv["attempt_count"] - 1  # retries already made; the first attempt is not one
        if done >= len(self.policy.days):
            return None
        return self.now() + int(self.policy.days[done] * DAY)

    def retry(self, inv: Obj) -> None:
        """The retry that fell due: charge the same invoice again."""
        sub = self.store.get(subscription_of(inv) or "", "subscription")
        if inv["status"] != "open" or sub["status"] in ENDED:
            inv["next_payment_attempt"] = None
            return
        invoices = self.engine.invoices
        paid = invoices.attempt_payment(inv, sub["id"])
        invoices.emit_outcome(inv, paid)
        if paid:
            self.engine.subscriptions.invoice_paid(sub, inv)
        else:
            self.settle(sub, inv)

    def settle(self, sub: Obj, inv: Obj) -> None:
        """After a failed automatic attempt: if it was the last, apply the policy's outcome."""
        if inv["next_payment_attempt"] is not None or not self.retried(inv) or sub["status"] in ENDED:
            return
        outcome = self.policy.then
        if outcome == "canceled":
            self.engine.subscriptions.end(sub, "canceled", reason="payment_failed")
        elif outcome == "unpaid" and sub["status"] != "unpaid":
            before = self.engine.render(sub)
            sub["status"] = "unpaid"
            self.events.emit_updated("customer.subscription.updated", sub, before)
