"""The list of what `create_app` mounts and starts, in one place.

Adding a surface (proxy, dashboard, MCP, webhooks) means adding it here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy import text

from modelux_server.runtime import Runtime

MANAGE = "/manage/v1"


def routers() -> list[tuple[APIRouter, str]]:
    from modelux_server.api_key.endpoints import router as api_keys
    from modelux_server.billing.endpoints import router as billing
    from modelux_server.billing.webhook_endpoints import router as stripe_webhooks
    from modelux_server.dashboard.endpoints import router as dashboard
    from modelux_server.management_key.endpoints import router as management_keys
    from modelux_server.member.endpoints import invitations_router as invitations
    from modelux_server.member.endpoints import router as members
    from modelux_server.project.endpoints import router as projects
    from modelux_server.provider.endpoints import router as providers
    from modelux_server.proxy.endpoints import router as proxy
    from modelux_server.proxy.metrics_endpoint import router as metrics
    from modelux_server.routing.endpoints import router as routing

    return [
        (billing, MANAGE),
        (projects, MANAGE),
        (api_keys, MANAGE),
        (providers, MANAGE),
        (management_keys, MANAGE),
        (members, MANAGE),
        (invitations, MANAGE),
        (routing, MANAGE),
        (proxy, ""),
        (metrics, ""),
        (dashboard, ""),
        (stripe_webhooks, ""),
    ]


def startups() -> list[Callable[[Runtime], Any]]:
    from modelux_server.billing.reconcile import nightly as billing_reconcile
    from modelux_server.billing.startup import billing_provider
    from modelux_server.mcp.http import lifespan as mcp_lifetime
    from modelux_server.notifications.worker import notifications_lifetime
    from modelux_server.proxy.state import proxy_lifetime
    from modelux_server.usage.setup import counter_lifetime

    # notifications after the counter: on shutdown the worker stops first,
    # while the counter it reads for plan-change re-checks is still open
    # the billing provider first, so every later part (and the nightly
    # reconciliation, last) finds it in rt.extras["billing"]
    return [
        billing_provider,
        counter_lifetime,
        notifications_lifetime,
        proxy_lifetime,
        mcp_lifetime,
        billing_reconcile,
    ]


def mounts(rt: Runtime) -> list[Callable[[FastAPI], None]]:
    from modelux_server.dashboard.endpoints import mount as dashboard
    from modelux_server.mcp.http import mount as mcp

    return [mcp(rt), dashboard]


async def readiness(rt: Runtime) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        async with rt.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
        checks["database"] = f"error: {type(exc).__name__}"
    for name, probe in rt.extras.get("readiness", {}).items():
        try:
            checks[name] = await probe()
        except Exception as exc:  # noqa: BLE001
            checks[name] = f"error: {type(exc).__name__}"
    return checks
