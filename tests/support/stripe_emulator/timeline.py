"""Moving the frozen clock, like advancing a Stripe test clock.

Whatever falls due on the way (renewals, scheduled cancellations, incomplete and pending
update expiries, Checkout Session expiries, payment retries, drafts finalized by
automatic advancement, sent invoices passing their due date unpaid) runs in time order,
each at its own instant.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from .resource import Resource
from .subscriptions import INCOMPLETE_WINDOW

Action = Callable[[], object]


class Timeline(Resource):
    def advance(self, seconds: int) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        target = self.now() + seconds
        while (step := self._next_due(target)) is not None:
            at, action = step
            self.engine.clock.set(max(at, self.now()))
            action()
        self.engine.clock.set(target)

    def _next_due(self, target: int) -> tuple[int, Action] | None:
        subscriptions, changes = self.engine.subscriptions, self.engine.changes
        # (instant, tie-break, action); subscriptions first, then sessions, then invoice
        # retries, then overdue invoices, each in creation order.
        due: list[tuple[int, int, Action]] = []
        for n, sub in enumerate(self.store.all("subscriptions")):
            status = sub["status"]
            if status == "incomplete":
                due.append(
                    (sub["created"] + INCOMPLETE_WINDOW, n, partial(subscriptions.expire_incomplete, sub))
                )
            elif status in ("active", "trialing", "past_due", "unpaid"):
                if sub["cancel_at"] and sub["cancel_at"] <= sub["current_period_end"]:
                    end = partial(subscriptions.end, sub, "canceled", reason="cancellation_requested")
                    due.append((sub["cancel_at"], n, end))
                else:
                    due.append((sub["current_period_end"], n, partial(subscriptions.renew, sub)))
            if sub["pending_update"]:
                due.append((sub["pending_update"]["expires_at"], n, partial(changes.expire_pending, sub)))
        for n, session in enumerate(self.store.all("checkout_sessions")):
            if session["status"] == "open":
                expire = partial(self.engine.checkout.expire, session["id"])
                due.append((session["expires_at"], 10**9 + n, expire))
        overdue = self.engine.invoices.overdue
        for n, inv in enumerate(self.store.all("invoices")):
            if inv["status"] == "open" and inv["next_payment_attempt"] is not None:
                retry = partial(self.engine.retries.retry, inv)
                due.append((inv["next_payment_attempt"], 2 * 10**9 + n, retry))
            if inv["status"] == "draft" and inv["automatically_finalizes_at"] is not None:
                advance = partial(self.engine.invoices.advance_draft, inv)
                due.append((inv["automatically_finalizes_at"], 2 * 10**9 + n, advance))
            if (
                inv["status"] == "open"
                and inv["collection_method"] == "send_invoice"
                and inv["due_date"] is not None
                and inv["id"] not in overdue
            ):
                late = partial(self.engine.subscriptions.invoice_overdue, inv)
                due.append((inv["due_date"], 3 * 10**9 + n, late))
        due = [d for d in due if d[0] <= target]
        if not due:
            return None
        at, _, action = min(due, key=lambda d: (d[0], d[1]))
        return at, action
