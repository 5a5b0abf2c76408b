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
- ``engine.timeline``: advancing the clock, in due order (:mod:`.timeline`)
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable

from .catalog import Catalog
from .changes import SubscriptionChanges
from .checkout import CheckoutSessions
from .clock import Clock
from .customers import Customers
from .events import Events
from .invoices import Invoices
from .portal import BillingPortal
from .resource import Obj
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
        self.timeline = Timeline(self)

    def render(self, obj: Obj) -> Obj:
        out = copy.deepcopy(obj)
        if out.get("object") == "subscription":
            for item in out["items"]["data"]:
                item["price"] = copy.deepcopy(self.store.get(item["price"]))
        return out
