"""A stateful, Stripe-compatible HTTP emulator for tests.

Start it on loopback and point the official SDK at it::

    emu = StripeEmulator(webhook_url="http://127.0.0.1:8000/stripe/webhook")
    emu.start()
    client = stripe.StripeClient(emu.api_key, base_addresses={"api": emu.base_url})
    ...
    emu.stop()

The emulator keeps its own frozen clock (like a Stripe test clock), validates every
request against the SDK's parameter TypedDicts, signs webhooks exactly as Stripe does
and lets tests hold, reorder, duplicate or drop deliveries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from stripe._api_version import _ApiVersion

from .app import Outage, RequestLog, build_app
from .clock import Clock
from .engine import Engine
from .payments import DEFAULT_CARD
from .retries import RetryPolicy
from .server import BackgroundServer
from .webhooks import DeliveryResult, Dispatcher, sign

__all__ = ["DeliveryResult", "StripeEmulator", "sign"]

T = TypeVar("T")


class StripeEmulator:
    def __init__(
        self,
        *,
        webhook_url: str | None = None,
        webhook_secret: str = "whsec_test",
        api_key: str = "sk_test_emulator",
        start_time: int | None = None,
        api_version: str = _ApiVersion.CURRENT,
    ) -> None:
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.api_key = api_key
        self.base_url = ""
        self._clock = Clock(start_time)
        self._dispatcher = Dispatcher(
            url_getter=lambda: self.webhook_url, secret_getter=lambda: self.webhook_secret
        )
        self._engine = Engine(self._clock, self._dispatcher.submit, lambda: self.base_url, api_version)
        self._server: BackgroundServer | None = None
        self.request_log = RequestLog()
        self.outage = Outage()

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._server = BackgroundServer(build_app(self))
        self.base_url = f"http://127.0.0.1:{self._server.port}"
        self._dispatcher.start()
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._dispatcher.stop()

    def __enter__(self) -> StripeEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- clock
    def now(self) -> int:
        return self._clock.now()

    def advance(self, seconds: int) -> None:
        """Move the clock; renew/cancel/expire whatever falls due, in time order."""
        self._run(lambda: self._engine.timeline.advance(seconds))

    # ---------------------------------------------------------------- test hooks
    def complete_checkout(
        self,
        session_id: str,
        *,
        payment_fails: bool = False,
        email: str | None = None,
        name: str | None = None,
        tax_id: tuple[str, str] | None = None,
        card: str = DEFAULT_CARD,
    ) -> dict[str, Any]:
        """Pay a Checkout Session as a customer would; returns the session.

        With ``payment_fails`` (or ``card="4000000000000341"``) the card is declined: customer
        and an ``incomplete`` subscription exist, the first invoice is open and the session
        stays open. ``tax_id`` is ``(type, value)``, e.g. ``("eu_vat", "DE123456789")``, and
        is only saved when the session enabled ``tax_id_collection``.

        ``card`` is a Stripe test card number. Checkout saves it for off-session use as the
        subscription's ``default_payment_method``, and the customer completes 3-D Secure on
        the page, so the first payment succeeds with 4000002500003155 and 4000002760003184;
        renewals then succeed with the first and need authentication with the second.
        """
        return self._run(
            lambda: self._engine.render(
                self._engine.checkout.complete(
                    session_id, payment_fails=payment_fails, email=email, name=name, tax_id=tax_id, card=card
                )
            )
        )

    def set_card(self, customer_id: str, number: str, *, set_up_off_session: bool = False) -> dict[str, Any]:
        """The customer's card is now this test card: it pays everything from here on.

        Attaches it (returns the PaymentMethod, ``pm_...``) as the customer's
        ``invoice_settings.default_payment_method`` and as the ``default_payment_method`` of
        each live subscription that has one (Checkout's do). Stripe's test cards:
        4242424242424242 and 5555555555554444 pay; 4000000000000341 attaches but every charge
        is declined; 4000002500003155 needs authentication unless set up for off-session use
        (``set_up_off_session=True``: renewals and API-driven charges then succeed);
        4000002760003184 needs authentication on every payment.
        """
        return self._run(
            lambda: self._engine.render(
                self._engine.payments.set_default_card(
                    customer_id, number, set_up_off_session=set_up_off_session
                )
            )
        )

    def complete_invoice_authentication(self, invoice_id: str) -> dict[str, Any]:
        """The customer completes 3-D Secure for an invoice whose payment ``requires_action``.

        What the button on the hosted invoice page does: the invoice is paid through the same
        path as ``POST /v1/invoices/{id}/pay`` (``invoice.paid``, a pending update applied,
        the subscription ``active`` again). Returns the invoice.
        """
        return self._run(lambda: self._engine.render(self._engine.payments.authenticate_invoice(invoice_id)))

    def pay_hosted_invoice(self, invoice_id: str, *, card: str | None = None) -> dict[str, Any]:
        """The customer pays an open invoice on its hosted page, with the card on file or
        a new test ``card`` (authenticating if the bank asks). Returns the invoice, still
        ``open`` if the card was declined."""
        payments = self._engine.payments
        return self._run(lambda: self._engine.render(payments.pay_on_hosted_page(invoice_id, card)))

    def fail_next_requests(self, n: int = 1) -> None:
        """The next ``n`` API requests fail with Stripe's 500 ``api_error`` (nothing is done)."""
        self.outage.add(n)

    def pay_out_of_band(self, invoice_id: str) -> dict[str, Any]:
        """The customer paid an open invoice outside Stripe (a bank transfer the account
        recorded): ``POST /v1/invoices/{id}/pay`` with ``paid_out_of_band=true``. The invoice
        is paid and a subscription it kept ``past_due`` is ``active`` again."""
        invoices = self._engine.invoices
        return self._run(lambda: self._engine.render(invoices.pay(invoice_id, {"paid_out_of_band": True})))

    def fail_next_payment(self, subscription_id: str, *, times: int = 1) -> None:
        """Decline the next ``times`` non-zero payment attempts for this subscription.

        Automatic retries are attempts too: to keep a renewal unpaid through every retry
        of the policy (:meth:`set_retry_policy`), decline ``1 + len(days)`` attempts.
        """
        self._run(lambda: self._engine.invoices.fail_next_payment(subscription_id, times))

    def set_retry_policy(self, days: tuple[float, ...], then: str = "canceled") -> None:
        """The account's retry settings for failed subscription payments.

        ``days[i]``: the delay (in days) of retry ``i + 1`` after the attempt before it;
        ``then``: what the subscription becomes after the last retry failed (``canceled``,
        ``unpaid`` or ``past_due``). The default is :data:`.retries.DEFAULT_RETRY_POLICY`.
        """
        policy = RetryPolicy(days=tuple(days), then=then)
        with self._engine.lock:
            self._engine.retries.policy = policy

    def set_subscription_status(self, subscription_id: str, status: str) -> None:
        self._run(lambda: self._engine.subscriptions.set_status(subscription_id, status))

    def portal_change_price(
        self,
        subscription_id: str,
        price_id: str,
        *,
        proration_behavior: str = "create_prorations",
    ) -> None:
        """What a customer does in the portal: switch the (first) item's price."""
        self._run(lambda: self._engine.portal.change_price(subscription_id, price_id, proration_behavior))

    def save_dashboard_portal(self, features: dict[str, Any] | None = None) -> dict[str, Any]:
        """Save the portal settings in the Dashboard: the account's default configuration."""
        params = {"features": features or {}}
        return self._run(
            lambda: self._engine.render(self._engine.portal.create_configuration(params, from_dashboard=True))
        )

    def portal_session_change_price(self, session_id: str, subscription_id: str, price_id: str) -> None:
        """A click in a portal session: only the prices its configuration lists, with its proration."""
        self._run(lambda: self._engine.portal.session_change_price(session_id, subscription_id, price_id))

    def portal_session_cancel(self, session_id: str, subscription_id: str) -> None:
        """A click in a portal session: cancels the way its configuration's `mode` says."""
        self._run(lambda: self._engine.portal.session_cancel(session_id, subscription_id))

    def portal_cancel_at_period_end(self, subscription_id: str) -> None:
        self._run(lambda: self._engine.portal.cancel_at_period_end(subscription_id))

    def portal_update_customer(
        self,
        customer_id: str,
        *,
        email: str | None = None,
        tax_id: str | None = None,
        tax_id_type: str = "eu_vat",
    ) -> None:
        """Email changes emit ``customer.updated``; a tax id emits ``customer.tax_id.*``."""
        tax = (tax_id_type, tax_id) if tax_id is not None else None
        self._run(lambda: self._engine.portal.update_customer(customer_id, email, tax))

    # ---------------------------------------------------------------- webhooks
    def hold_webhooks(self) -> None:
        """Queue new events instead of delivering them, until :meth:`release_webhooks`."""
        self._dispatcher.hold()

    def release_webhooks(
        self, *, order: str = "fifo", duplicate: bool = False, seed: int | None = None
    ) -> list[DeliveryResult]:
        """Deliver held events (``fifo``/``reverse``/``shuffle``), optionally each twice.

        Stops holding. Returns one :class:`DeliveryResult` per delivery attempt.
        """
        return self._dispatcher.release(order, duplicate, seed)

    def drop_next_webhooks(self, n: int) -> None:
        """The next ``n`` events are recorded (``GET /v1/events``) but never delivered."""
        self._dispatcher.drop_next(n)

    def redeliver(self, event_id: str) -> DeliveryResult:
        with self._engine.lock:
            event = self._engine.store.get(event_id, "event")
        return self._dispatcher.redeliver(event)

    def wait_for_webhooks(self, timeout: float = 30.0) -> None:
        """Block until every delivery queued so far (e.g. by an SDK call) has finished."""
        self._dispatcher.wait_idle(timeout)

    def requests(self, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        """The valid API requests received, oldest first: ``method``, ``path``, ``params``
        (decoded, as the SDK sent them) and ``idempotency_key``; narrowed by method and by
        exact path."""
        return [
            r
            for r in self.request_log.entries()
            if method in (None, r["method"]) and path in (None, r["path"])
        ]

    @property
    def delivered(self) -> list[dict[str, Any]]:
        return self._dispatcher.delivered

    @property
    def dropped(self) -> list[str]:
        return self._dispatcher.dropped

    def events(self, type: str | None = None) -> list[dict[str, Any]]:
        """All events, oldest first (``GET /v1/events`` lists newest first)."""
        with self._engine.lock:
            return [e for e in self._engine.store.all("events") if type in (None, e["type"])]

    def get(self, object_id: str) -> dict[str, Any]:
        """Rendered snapshot of any stored object, for assertions."""
        with self._engine.lock:
            return self._engine.render(self._engine.store.get(object_id))

    # ---------------------------------------------------------------- internals
    def _run(self, fn: Callable[[], T]) -> T:
        # Mutate under the lock, then wait outside it for the deliveries this caused, so a
        # receiver that calls back into the API is served while we wait.
        with self._engine.lock:
            result = fn()
        self._dispatcher.wait_idle()
        return result
