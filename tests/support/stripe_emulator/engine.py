"""The stateful core: one store, one clock, one lock, and a service per Stripe resource.

Every public method runs under the engine's re-entrant lock and returns the *stored*
objects; :meth:`Engine.render` produces the JSON shape (with nested prices etc.).

- ``engine.events``: event log and emission to the webhook dispatcher (:mod:`.events`)
- ``engine.customers``: customers and their tax ids (:mod:`.customers`)
- ``engine.catalog``: products and prices (:mod:`.catalog`)
- ``engine.checkout``: Checkout Sessions (:mod:`.checkout`)
- ``engine.portal``: portal configurations, sessions, customer actions (:mod:`.portal`)
- ``engine.subscriptions``: create, list, cancel, renew, status (:mod:`.subscriptions`)
- ``engine.changes``: item changes, proration, pending updates (:mod:`.changes`)
- ``engine.invoices``: invoices, invoice items, payments, previews (:mod:`.invoices`)
- ``engine.retries``: automatic retries of failed invoices, and their end (:mod:`.retries`)
- ``engine.payments``: cards, PaymentIntents, invoice payments, charges (:mod:`.payments`)
- ``engine.credit_notes``: credit notes and the refunds they make (:mod:`.credit_notes`)
- ``engine.refunds``: refunds made directly, and the limit all refunds obey (:mod:`.refunds`)
- ``engine.timeline``: advancing the clock, in due order (:mod:`.timeline`)
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable

from . import objects
from .catalog import Catalog
from .changes import SubscriptionChanges
from .checkout import CheckoutSessions
from .clock import Clock
from .credit_notes import CreditNotes
from .customers import Customers
from .events import Events
from .invoices import Invoices
from .payments import Payments
from .portal import BillingPortal
from .refunds import Refunds
from .resource import Obj
from .retries import Retries
from .store import Store
from .subscriptions import Subscriptions
from .timeline import Timeline


class Engine:
    def __init__(
        self,
        clock: Clock,
        submit_event: Callable[[Obj], None],
        base_url: Callable[[], str],
        api_version: str,
    ) -> None:
        self.lock = threading.RLock()
        self.store = Store()
        self.clock = clock
        self.base_url = base_url
        self.events = Events(self, submit_event, api_version)
        self.customers = Customers(self)
        self.catalog = Catalog(self)
        self.checkout = CheckoutSessions(self)
        self.portal = BillingPortal(self)
        self.subscriptions = Subscriptions(self)
        self.changes = SubscriptionChanges(self)
        self.invoices = Invoices(self)
        self.retries = Retries(self)
        self.payments = Payments(self)
        self.credit_notes = CreditNotes(self)
        self.refunds = Refunds(self)
        self.timeline = Timeline(self)

    def render(self, obj: Obj) -> Obj:
        out = copy.deepcopy(obj)
        if out.get("object") == "subscription":
            objects.render_subscription(out, self.store.get)
        return out
