"""The composition root: what the server is made of, and in which order it starts.

`create_app` (and every CLI command that needs the database) builds one
`Services` here. Adding a surface means adding its router to `ROUTERS`;
adding a long-lived part means adding one line to `start_services`, where its
place in the order is the order of the lines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Literal

from fastapi import APIRouter
from sqlalchemy import text

from modelux_server.config import Settings
from modelux_server.kit.clock import Clock, SystemClock
from modelux_server.kit.db import Database
from modelux_server.kit.secrets import Encryptor
from modelux_server.plans.catalog import load_catalog
from modelux_server.services import DerivedKeys, Services

MANAGE = "/manage/v1"
Role = Literal["serve", "worker", "command"]


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    """The plain parts, made at once; nothing is started and nothing connects yet."""
    secret = settings.resolved_secret_key()
    services = Services(
        settings=settings,
        db=Database(settings.resolved_database_url),
        catalog=load_catalog(settings.plan_catalog),
        clock=clock or SystemClock(),
        encryptor=Encryptor(secret),
        keys=DerivedKeys(secret.encode()),
    )
    _subscribe_to_billing(services)
    return services


def _subscribe_to_billing(services: Services) -> None:
    """What other domains do when billing acts; billing imports none of them.

    At build time, not start: an operator command changes plans too, and its
    receipts must be written as a server's are.
    """
    from modelux_server.audit.subscribers import audit_plan_change
    from modelux_server.enterprise.invoice_sync import route_stripe_event
    from modelux_server.notifications.service import enqueue_plan_changed, on_payment_failed
    from modelux_server.notifications.thresholds import recheck_after_plan_change
    from modelux_server.routing.service import inactive_configs

    # in this order: the receipt is written before any threshold email it caused
    services.plan_change_subscribers.extend(
        [enqueue_plan_changed, recheck_after_plan_change, audit_plan_change]
    )
    services.payment_failed_subscribers.append(on_payment_failed)
    services.dormant_sources.append(inactive_configs)
    # an Enterprise plan's invoice subscription: its events mirror invoices, never move the plan
    services.stripe_event_routes.append(route_stripe_event)


@asynccontextmanager
async def start_services(services: Services, *, role: Role = "serve") -> AsyncIterator[Services]:
    """Start the long-lived parts in order; they stop in reverse when the block ends.

    `serve`: everything a serving process needs, and the background work too
    when the settings say this process runs it (`serve_runs_background`).
    `worker`: `modelux worker`, the background work with no serving parts.
    `command`: an operator command, only the billing processor and a counter
    that reads the ledger.
    """
    from modelux_server.billing.lifetime import billing_processor
    from modelux_server.usage.lifetime import counter_lifetime, ledger_reader

    async with AsyncExitStack() as stack:
        # billing first: every later part (the scheduled jobs last) may call it
        await stack.enter_async_context(billing_processor(services))
        if role != "serve":
            await stack.enter_async_context(ledger_reader(services))
            if role == "worker":
                await _background(stack, services)
            yield services
            return

        from modelux_server.auth.last_used import last_used_lifetime
        from modelux_server.budget.lifetime import budget_meter_lifetime
        from modelux_server.mcp.http import lifespan as mcp_lifetime
        from modelux_server.notifications.worker import notifications_lifetime
        from modelux_server.proxy.lifetime import proxy_lifetime
        from modelux_server.ratelimit.lifetime import rate_limiter_lifetime

        background = services.settings.serve_runs_background
        await stack.enter_async_context(counter_lifetime(services))
        await stack.enter_async_context(budget_meter_lifetime(services))
        await stack.enter_async_context(rate_limiter_lifetime(services))
        # after the counter: on shutdown the mailer stops first, while the counter
        # it reads for plan-change re-checks is still open
        await stack.enter_async_context(notifications_lifetime(services, send=background))
        # before the proxy: on shutdown it writes the last uses after the requests are done
        await stack.enter_async_context(last_used_lifetime(services))
        await stack.enter_async_context(proxy_lifetime(services))
        await stack.enter_async_context(mcp_lifetime(services))
        if background:
            from modelux_server.jobs.lifetime import scheduler_lifetime

            await stack.enter_async_context(scheduler_lifetime(services))
        yield services


async def _background(stack: AsyncExitStack, services: Services) -> None:
    """The background work of `modelux worker`: the email outbox and the scheduled jobs."""
    from modelux_server.jobs.lifetime import scheduler_lifetime
    from modelux_server.notifications.worker import notifications_lifetime

    if not services.settings.workers_enabled:
        return
    await stack.enter_async_context(notifications_lifetime(services, send=True))
    await stack.enter_async_context(scheduler_lifetime(services))


def routers() -> list[tuple[APIRouter, str]]:
    """Every HTTP surface but MCP (an ASGI route of its own, see mcp/http.py)."""
    from modelux_server.admin.endpoints import router as admin
    from modelux_server.api_docs.endpoints import router as api_docs
    from modelux_server.api_key.endpoints import router as api_keys
    from modelux_server.audit.endpoints import access_review_router as access_review
    from modelux_server.audit.endpoints import router as audit_log
    from modelux_server.billing.endpoints import router as billing
    from modelux_server.billing.stripe.endpoints import router as stripe_webhooks
    from modelux_server.budget.endpoints import router as budgets
    from modelux_server.dashboard.endpoints import router as dashboard
    from modelux_server.management_key.endpoints import router as management_keys
    from modelux_server.member.endpoints import invitations_router as invitations
    from modelux_server.member.endpoints import router as members
    from modelux_server.project.endpoints import router as projects
    from modelux_server.provider.endpoints import router as providers
    from modelux_server.proxy.endpoints import router as proxy
    from modelux_server.proxy.metrics_endpoint import router as metrics
    from modelux_server.routing.endpoints import router as routing
    from modelux_server.sales.endpoints import router as sales

    return [
        (billing, MANAGE),
        (projects, MANAGE),
        (api_keys, MANAGE),
        (providers, MANAGE),
        (management_keys, MANAGE),
        (members, MANAGE),
        (invitations, MANAGE),
        (routing, MANAGE),
        (budgets, MANAGE),
        (audit_log, MANAGE),
        (access_review, MANAGE),
        (sales, MANAGE),
        (proxy, ""),
        (metrics, ""),
        (dashboard, ""),
        (stripe_webhooks, ""),
        (api_docs, ""),
        (admin, ""),
    ]


async def readiness(services: Services) -> dict[str, str]:
    checks: dict[str, str] = {}
    if services.draining:
        checks["shutdown"] = "draining"
    try:
        async with services.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
        checks["database"] = f"error: {type(exc).__name__}"
    for name, probe in services.readiness.items():
        try:
            checks[name] = await probe()
        except Exception as exc:  # noqa: BLE001
            checks[name] = f"error: {type(exc).__name__}"
    return checks
