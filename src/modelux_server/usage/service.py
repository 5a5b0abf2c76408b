"""Admission: the one call the proxy makes before any upstream work."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from modelux_server.kit.windows import Window
from modelux_server.plans.entitlements import Entitlements
from modelux_server.services import Services
from modelux_server.usage.counter import Admitted, Rejected, RequestCounter, UsageListener, UsageObserved

log = logging.getLogger("modelux.usage")
_background: set[asyncio.Task[None]] = set()


def counter(rt: Services) -> RequestCounter:
    return rt.counter


async def admit(rt: Services, org_id: str, window: Window, ent: Entitlements, now: datetime) -> Admitted:
    """Count one request, or raise the monthly 402 (with Retry-After)."""
    limit = ent.limit("monthly_requests")
    result = await counter(rt).admit(org_id, window, limit)
    if isinstance(result, Rejected):
        # heard on refusals too: if writing the 100% email failed when the cap was reached
        # (the database was away), the next refused request tries again (once per window:
        # listeners skip what they handled, and the outbox dedupes)
        _notify(rt, UsageObserved(org_id=org_id, window=window, used=result.used, limit=limit))
        raise ent.limit_error("monthly_requests", result.used, now=now, resets_at=window.end)
    if result.counted:
        _notify(rt, UsageObserved(org_id=org_id, window=window, used=result.used, limit=limit))
    return result


def _notify(rt: Services, event: UsageObserved) -> None:
    listeners: list[UsageListener] = [
        listener
        for listener in rt.usage_listeners
        if getattr(listener, "wants", None) is None or listener.wants(event)  # type: ignore[attr-defined]
    ]
    if not listeners:
        return
    # listeners (threshold emails) run off the hot path; the answer does not wait
    task = asyncio.create_task(_run_listeners(listeners, event))
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _run_listeners(listeners: list[UsageListener], event: UsageObserved) -> None:
    for listener in listeners:
        try:
            await listener(event)
        except Exception:  # noqa: BLE001 - a failing listener must not affect others
            log.exception("usage listener failed")


async def drain_listeners() -> None:
    """Wait for pending listener tasks (tests and shutdown)."""
    while _background:
        await asyncio.gather(*list(_background), return_exceptions=True)
