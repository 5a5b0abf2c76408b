"""OpenTelemetry traces, optional: a server span per request, a client span per upstream attempt.

Off unless `MODELUX_OTLP_ENDPOINT` names an OTLP/HTTP traces URL, and the `otel`
extra is installed. Off, nothing here imports OpenTelemetry and the callers skip
every span (they hold `None` instead of a tracer), so the hot path pays one
`is None` test.

The pipeline is our own `TracerProvider`, not the process-global one: several apps
in one process (tests) each export to their own endpoint, and a library that sets
the global provider does not change where our spans go. Exporting runs on the
SDK's batch thread, never on the event loop.

What a span may hold: method, route template, path without its query string,
status, request id, organization and project ids; for an upstream attempt the
provider, model, attempt number and outcome. Never a header, a body, a prompt
or a credential, and no exception messages (an upstream's error text can quote
what it was sent).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from modelux_server.config import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

log = logging.getLogger("modelux.tracing")


class Tracing:
    """A started span pipeline; `shutdown` exports what is still queued."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer("modelux_server")

    def shutdown(self) -> None:
        self.provider.shutdown()


def start_tracing(settings: Settings) -> Tracing | None:
    """The span pipeline `settings` asks for, or None when tracing is off or not installed."""
    if not settings.otlp_endpoint:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "MODELUX_OTLP_ENDPOINT is set but OpenTelemetry is not installed "
            "(pip install 'modelux-server[otel]'); tracing is off"
        )
        return None
    resource = Resource.create({"service.name": settings.otel_service_name})
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
    return Tracing(provider)


@contextmanager
def server_span(tracer: Tracer, method: str, path: str) -> Iterator[Span]:
    """The request's span, current while the app runs; named by `finish_server_span`."""
    from opentelemetry.trace import SpanKind

    with tracer.start_as_current_span(
        method,
        kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "url.path": path},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def finish_server_span(
    span: Span,
    *,
    method: str,
    route: str | None,
    status: int,
    request_id: str,
    org_id: str | None,
    project_id: str | None,
) -> None:
    from opentelemetry.trace import StatusCode

    # `{method} {route}`, as the HTTP semantic conventions name server spans; an
    # unmatched path is left out of the name, which must stay low-cardinality
    span.update_name(f"{method} {route}" if route else method)
    if route:
        span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    span.set_attribute("modelux.request_id", request_id)
    if org_id:
        span.set_attribute("modelux.org_id", org_id)
    if project_id:
        span.set_attribute("modelux.project_id", project_id)
    if status >= 500:
        span.set_status(StatusCode.ERROR)


@contextmanager
def upstream_span(tracer: Tracer, *, provider: str, model: str, attempt: int) -> Iterator[Span]:
    """One call to an upstream provider (for a stream: until its answer has started)."""
    from opentelemetry.trace import SpanKind

    with tracer.start_as_current_span(
        f"upstream {provider}",
        kind=SpanKind.CLIENT,
        attributes={
            "modelux.provider": provider,
            "gen_ai.request.model": model,
            "modelux.attempt": attempt,
        },
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def end_attempt(span: Span, outcome: str, status: int | None) -> None:
    """Record how an upstream attempt ended: `ok`, `timeout`, `connection` or the HTTP status."""
    from opentelemetry.trace import StatusCode

    span.set_attribute("modelux.outcome", outcome)
    if status is not None:
        span.set_attribute("http.response.status_code", status)
    if outcome != "ok":
        span.set_status(StatusCode.ERROR)
