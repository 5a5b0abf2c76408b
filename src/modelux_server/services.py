"""What a running server holds: one typed `Services`, built by `create_app` or a CLI command.

Assembly happens in two steps, both in `modelux_server.assembly`:

1. `build_services(settings)` makes the plain parts at once: settings, database,
   plan catalog, clock, encryptor and the keys derived from the secret key; and
   it subscribes other domains to billing's events (billing/events.py).
2. `start_services(services, stack)` starts the long-lived parts in this order,
   each entered on one `AsyncExitStack` so they stop in reverse:
   billing processor -> request counter -> rate limiter -> notifications (threshold watcher,
   mailer worker when this process runs background work) -> last-used notebook
   (auth/last_used.py) -> proxy (metrics, upstream client, request log) -> MCP
   sessions -> scheduled jobs (the nightly reconcile; jobs/lifetime.py). `modelux worker`
   starts only the billing processor, a ledger reader, the mailer and the scheduled jobs.

A part that was never started is not silently replaced: reading it raises
`PartNotStarted`, naming the part. Endpoints reach the services through
`request.app.state.services`; services receive them as an argument, never
through a global.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from modelux_server.config import Settings
from modelux_server.kit.clock import Clock
from modelux_server.kit.db import Database
from modelux_server.kit.secrets import Encryptor
from modelux_server.plans.catalog import Catalog

if TYPE_CHECKING:  # the parts' own modules import this one
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from opentelemetry.trace import Tracer

    from modelux_server.auth.last_used import LastUsed
    from modelux_server.billing.events import (
        PaymentFailedSubscriber,
        PlanChangeSubscriber,
        StripeEventRoute,
    )
    from modelux_server.billing.processor import BillingProcessor
    from modelux_server.billing.summary import DormantSource
    from modelux_server.budget.meter import BudgetMeter
    from modelux_server.proxy.metrics import ProxyMetrics
    from modelux_server.proxy.state import ProxyState
    from modelux_server.ratelimit.limiter import RateLimiter
    from modelux_server.usage.counter import RequestCounter, UsageListener

Probe = Callable[[], Awaitable[str]]
Invalidator = Callable[..., None]


class PartNotStarted(RuntimeError):
    """A part of the server was read before it was started (an assembly mistake, not a client's)."""

    def __init__(self, part: str) -> None:
        super().__init__(f"the {part} was not started; start it in modelux_server.assembly first")


@dataclass(frozen=True)
class DerivedKeys:
    """Keys for one purpose each, derived from `MODELUX_SECRET_KEY`.

    Derived, not random, so every process of a deployment agrees on them.
    """

    secret: bytes

    def for_purpose(self, purpose: str) -> bytes:
        return hmac.new(self.secret, purpose.encode(), hashlib.sha256).digest()


@dataclass
class Services:
    settings: Settings
    db: Database
    catalog: Catalog
    clock: Clock
    encryptor: Encryptor
    keys: DerivedKeys
    # who hears about billing, filled by build_services: billing publishes,
    # other domains subscribe, so billing imports none of them
    plan_change_subscribers: list[PlanChangeSubscriber] = field(default_factory=list)
    payment_failed_subscribers: list[PaymentFailedSubscriber] = field(default_factory=list)
    # Stripe events of subscriptions another domain owns (billing/events.py)
    stripe_event_routes: list[StripeEventRoute] = field(default_factory=list)
    dormant_sources: list[DormantSource] = field(default_factory=list)
    # filled while the parts start (see the module docstring for the order)
    readiness: dict[str, Probe] = field(default_factory=dict)
    usage_listeners: list[UsageListener] = field(default_factory=list)
    mailer_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # spans for requests and upstream attempts; None unless tracing is on (kit/tracing.py)
    tracer: Tracer | None = None
    # SIGTERM received: /readyz answers 503 while in-flight work finishes (kit/lifecycle.py)
    draining: bool = False
    # when the whole shutdown must be over (time.monotonic()), set with the signal
    shutdown_deadline: float | None = None
    # spend budgets' counters (budget/meter.py); None until the serving parts start
    budget_meter: BudgetMeter | None = None
    # when keys were last used, noted in memory and written in the background
    # (auth/last_used.py); None in processes that serve no requests
    last_used: LastUsed | None = None
    _invalidators: list[Invalidator] = field(default_factory=list)
    _billing: BillingProcessor | None = None
    _counter: RequestCounter | None = None
    _rate_limiter: RateLimiter | None = None
    _metrics: ProxyMetrics | None = None
    _proxy: ProxyState | None = None
    _mcp_sessions: StreamableHTTPSessionManager | None = None

    @property
    def public_url(self) -> str:
        return self.settings.resolved_public_url

    # ------------------------------------------------------------------ parts
    @property
    def billing(self) -> BillingProcessor:
        if self._billing is None:
            raise PartNotStarted("billing processor")
        return self._billing

    @billing.setter
    def billing(self, value: BillingProcessor | None) -> None:
        self._billing = value

    @property
    def has_billing(self) -> bool:
        return self._billing is not None

    @property
    def counter(self) -> RequestCounter:
        if self._counter is None:
            raise PartNotStarted("request counter")
        return self._counter

    @counter.setter
    def counter(self, value: RequestCounter | None) -> None:
        self._counter = value

    @property
    def rate_limiter(self) -> RateLimiter:
        if self._rate_limiter is None:
            raise PartNotStarted("rate limiter")
        return self._rate_limiter

    @rate_limiter.setter
    def rate_limiter(self, value: RateLimiter | None) -> None:
        self._rate_limiter = value

    @property
    def metrics(self) -> ProxyMetrics:
        if self._metrics is None:
            raise PartNotStarted("proxy metrics")
        return self._metrics

    @metrics.setter
    def metrics(self, value: ProxyMetrics | None) -> None:
        self._metrics = value

    @property
    def has_metrics(self) -> bool:
        return self._metrics is not None

    @property
    def proxy(self) -> ProxyState:
        if self._proxy is None:
            raise PartNotStarted("proxy")
        return self._proxy

    @proxy.setter
    def proxy(self, value: ProxyState | None) -> None:
        self._proxy = value

    @property
    def mcp_sessions(self) -> StreamableHTTPSessionManager | None:
        return self._mcp_sessions

    @mcp_sessions.setter
    def mcp_sessions(self, value: StreamableHTTPSessionManager | None) -> None:
        self._mcp_sessions = value

    def shutdown_time_left(self) -> float:
        """What remains of the shutdown grace: each part stopping waits at most this long.

        One deadline for the whole shutdown, so parts that wait one after
        another (in-flight requests, the running job, the mailer's last round)
        together stay within what the supervisor allows before SIGKILL.
        """
        import time

        grace = self.settings.shutdown_grace_seconds
        if self.shutdown_deadline is None:
            return grace
        return max(0.0, min(grace, self.shutdown_deadline - time.monotonic()))

    # ------------------------------------------------------------ invalidation
    def add_invalidator(self, invalidate: Invalidator) -> None:
        self._invalidators.append(invalidate)

    def invalidate_now(self, **what: Any) -> None:
        """Tell in-process caches that something changed (token_hash=, org_id=, configs=, credentials=)."""
        for invalidate in self._invalidators:
            invalidate(**what)

    def invalidate(self, session: AsyncSession, **what: Any) -> None:
        """Drop cached copies once `session` commits.

        Not before: a cache miss between the drop and the commit would read the
        old row again and keep it for the cache's lifetime (a revoked key that
        keeps working). Not at all if the transaction rolls back.
        """
        after_commit(session, lambda: self.invalidate_now(**what))


def services_of(request: Request) -> Services:
    """The services of the app that is answering `request`."""
    services: Services = request.app.state.services
    return services


def after_commit(session: AsyncSession, action: Callable[[], None]) -> None:
    """Run `action` once, right after `session`'s transaction commits."""
    event.listen(session.sync_session, "after_commit", lambda _s: action(), once=True)
