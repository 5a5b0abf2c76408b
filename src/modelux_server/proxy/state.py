"""The proxy's long-lived parts, built at start-up and kept on the runtime."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import select

from modelux_server.kit.egress import policy_for
from modelux_server.kit.windows import Window, window_at
from modelux_server.models import RoutingConfig
from modelux_server.proxy.context import ProxyContext
from modelux_server.proxy.execute import Executor
from modelux_server.proxy.metrics import ProxyMetrics
from modelux_server.proxy.providers.registry import ProviderRegistry
from modelux_server.proxy.request_log import RequestLogWriter
from modelux_server.runtime import Runtime


@dataclass
class ProxyState:
    rt: Runtime
    ctx: ProxyContext
    executor: Executor
    metrics: ProxyMetrics
    request_log: RequestLogWriter
    registry: ProviderRegistry
    _windows: dict[tuple[int, date], Window] = field(default_factory=dict)

    def window(self, anchor_day: int, now: datetime) -> Window:
        """The counting window at `now`; windows change only at 00:00 UTC, so one per day is kept."""
        key = (anchor_day, now.astimezone(UTC).date())
        found = self._windows.get(key)
        if found is None:
            if len(self._windows) > 256:
                self._windows.clear()
            found = self._windows[key] = window_at(anchor_day, now)
        return found

    async def list_slugs(self, project_id: str) -> list[str]:
        async with self.rt.db.read_sessionmaker() as session:
            stmt = (
                select(RoutingConfig.slug)
                .where(RoutingConfig.project_id == project_id, RoutingConfig.deleted_at.is_(None))
                .order_by(RoutingConfig.slug)
            )
            slugs = list((await session.execute(stmt)).scalars())
            await session.commit()
        return slugs


@asynccontextmanager
async def proxy_lifetime(rt: Runtime) -> AsyncIterator[None]:
    metrics = rt.extras.get("metrics") or ProxyMetrics()
    rt.extras["metrics"] = metrics
    ctx = ProxyContext(rt)
    settings = rt.settings
    registry = ProviderRegistry(
        egress=policy_for(settings.egress_allow),
        max_bytes=settings.upstream_max_bytes,
        stream_max_bytes=settings.upstream_stream_max_bytes,
    )
    request_log = RequestLogWriter(rt.db, rt.settings.request_log_flush_ms)
    state = ProxyState(
        rt=rt,
        ctx=ctx,
        executor=Executor(ctx, registry, metrics, rt.settings.upstream_timeout_s),
        metrics=metrics,
        request_log=request_log,
        registry=registry,
    )
    rt.extras["proxy"] = state
    rt.add_invalidator(ctx.invalidate)
    await request_log.start()
    # Start-up leaves a large heap of long-lived objects (ORM mappers, routes, pydantic
    # models, imported modules). Every full collection would walk all of it again,
    # stalling the loop for tens of milliseconds under load (measured: p99 at 32
    # concurrent requests fell from ~120 ms to ~20 ms, CPU per request by a quarter).
    # Freezing moves it out of the collector's sight; shutdown gives it back.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        await request_log.close()
        await registry.aclose()
