"""Prometheus metrics of the proxy, in a registry owned by the app (not global).

Labelled children are looked up once per label value and kept: `labels()` takes a
lock and builds a tuple key on every call, which the hot path need not pay.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class ProxyMetrics:
    """Every series is bounded by the deployment, not by its tenants: endpoints, reasons,
    providers and failure kinds are fixed sets. `org_label` (MODELUX_METRICS_ORG_LABEL)
    adds `org_id` to the admitted-requests counter, one series per organization that
    sends traffic, which is for deployments with few organizations (docs/observability.md).
    """

    def __init__(self, *, org_label: bool = False) -> None:
        self.registry = CollectorRegistry()
        self.org_label = org_label
        self.admitted = Counter(
            "modelux_requests_admitted",
            "Proxy requests admitted (counted).",
            ["endpoint", "org_id"] if org_label else ["endpoint"],
            registry=self.registry,
        )
        self.admitted_uncounted = Counter(
            "modelux_requests_admitted_uncounted",
            "Proxy requests admitted while the counter was unreachable (fail-open).",
            registry=self.registry,
        )
        self.rejected = Counter(
            "modelux_requests_rejected",
            "Proxy requests refused by the gateway.",
            ["reason"],
            registry=self.registry,
        )
        self.upstream_latency = Histogram(
            "modelux_upstream_latency_seconds",
            "Time spent waiting for the upstream provider.",
            ["provider"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.overhead = Histogram(
            "modelux_gateway_overhead_seconds",
            "Time the gateway adds to a request (total minus upstream).",
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "modelux_upstream_errors",
            "Upstream attempts that failed.",
            ["provider", "kind"],
            registry=self.registry,
        )
        self._admitted: dict[str | tuple[str, str], Counter] = {}
        self._rejected: dict[str, Counter] = {}
        self._upstream_latency: dict[str, Histogram] = {}

    def admitted_for(self, endpoint: str, org_id: str) -> Counter:
        if not self.org_label:
            found = self._admitted.get(endpoint)
            if found is None:
                found = self._admitted[endpoint] = self.admitted.labels(endpoint)
            return found
        key = (endpoint, org_id)
        found = self._admitted.get(key)
        if found is None:
            found = self._admitted[key] = self.admitted.labels(endpoint, org_id)
        return found

    def rejected_for(self, reason: str) -> Counter:
        found = self._rejected.get(reason)
        if found is None:
            found = self._rejected[reason] = self.rejected.labels(reason)
        return found

    def upstream_latency_for(self, provider: str) -> Histogram:
        found = self._upstream_latency.get(provider)
        if found is None:
            found = self._upstream_latency[provider] = self.upstream_latency.labels(provider)
        return found
