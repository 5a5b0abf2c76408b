"""The proxy's long-lived parts, built at start-up (`lifetime.py`) and kept on `Services.proxy`."""

from __future__ import annotations

from dataclasses import dataclass, field

from modelux_server.kit.windows import WindowCache
from modelux_server.pricing.catalog import PriceBook
from modelux_server.proxy.execute import Executor
from modelux_server.proxy.lookups import Lookups
from modelux_server.proxy.metrics import ProxyMetrics
from modelux_server.proxy.providers.registry import ProviderRegistry
from modelux_server.proxy.request_log import RequestLogWriter
from modelux_server.services import Services


@dataclass
class ProxyState:
    rt: Services
    lookups: Lookups
    executor: Executor
    metrics: ProxyMetrics
    request_log: RequestLogWriter
    registry: ProviderRegistry
    windows: WindowCache = field(default_factory=WindowCache)
    prices: PriceBook = field(default_factory=PriceBook)
