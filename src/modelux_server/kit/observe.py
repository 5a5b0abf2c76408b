"""The outermost ASGI middleware: a request id, the access line and (optionally) a span per request.

Plain ASGI, no `BaseHTTPMiddleware`: it runs in front of the proxy's hot path, where
building Request objects and a second task per request would show in the benchmarks.

For each HTTP request it
* opens the request context (kit/request_context.py) with a new `req_...` id, which the
  proxy uses as its own request id, and adds `x-request-id` to the answer;
* keeps the caller's `X-Request-Id`, if it is a short safe token, as `client_request_id`
  (for matching a load balancer's lines to ours);
* writes one INFO line to `modelux.access` once the answer is complete, a stream when
  it ends: method, route template, path without the query string (invitation and
  Checkout return links carry tokens there), status, latency, client address (uvicorn
  has already put the forwarded address there for trusted proxies only);
* with a tracer, runs the request inside a server span (kit/tracing.py).
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelux_server.kit import request_context
from modelux_server.kit.logs import FIELDS
from modelux_server.kit.request_context import RequestContext

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

access = logging.getLogger("modelux.access")

_SAFE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
_MAX_PATH = 2000


def client_request_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"x-request-id":
            return value.decode("ascii") if _SAFE_ID.fullmatch(value) else None
    return None


def loggable_path(path: str) -> str:
    """The path as one printable line: a decoded `%0A` must not start a forged log line."""
    if not path.isprintable():
        path = path.encode("unicode_escape").decode("ascii")
    return path if len(path) <= _MAX_PATH else path[:_MAX_PATH] + "..."


class RequestObserver:
    def __init__(self, app: ASGIApp, *, access_log: bool = True, tracer: Tracer | None = None) -> None:
        self.app = app
        self.access_log = access_log
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        context = RequestContext(scope, client_request_id(scope["headers"]))
        token = request_context.enter(context)
        id_header = (b"x-request-id", context.request_id.encode("ascii"))
        status = 0
        failed = False

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            if self.tracer is None:
                await self.app(scope, receive, send_with_id)
            else:
                from modelux_server.kit.tracing import finish_server_span, server_span

                with server_span(self.tracer, context.method, scope["path"]) as span:
                    try:
                        await self.app(scope, receive, send_with_id)
                    finally:
                        finish_server_span(
                            span,
                            method=context.method,
                            route=context.route,
                            status=status or 500,
                            request_id=context.request_id,
                            org_id=context.org_id,
                            project_id=context.project_id,
                        )
        except BaseException:
            failed = True
            raise
        finally:
            # nothing sent: the server answers 500 for an app that raised or returned early
            if self.access_log and access.isEnabledFor(logging.INFO):
                _access_line(scope, context, status or 500, started)
            # After an unhandled error the context stays: Starlette's outermost error
            # middleware, outside this one and in the same task, logs the traceback
            # and answers the 500 (app.py), both with this request's id. The task
            # ends with the request, and its context with it.
            if not failed:
                request_context.leave(token)


def _access_line(scope: Scope, context: RequestContext, status: int, started: float) -> None:
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    client = scope.get("client")
    path = loggable_path(scope["path"])
    fields = {
        "path": path,
        "status": status,
        "latency_ms": latency_ms,
        "client_ip": client[0] if client else None,
    }
    # made and handed over directly: `access.info` would also walk the stack to find
    # the caller's file and line, which an access line never shows
    record = access.makeRecord(
        access.name,
        logging.INFO,
        __file__,
        0,
        "%s %s %d %.1fms",
        (context.method, path, status, latency_ms),
        None,
        extra={FIELDS: fields},
    )
    access.handle(record)
