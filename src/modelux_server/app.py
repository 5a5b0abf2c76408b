"""`create_app(settings)`: the ASGI app, its middleware and error handlers.

What it is made of and the order its parts start in live in `assembly.py`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelux_server.assembly import build_services, readiness, routers, start_services
from modelux_server.config import Settings
from modelux_server.dashboard.security import form_targets
from modelux_server.errors import ModeluxError, ServiceUnavailable
from modelux_server.kit import request_context
from modelux_server.kit.clock import Clock
from modelux_server.kit.db import database_unavailable
from modelux_server.kit.http_guards import BodyGuard, BodyTooLarge
from modelux_server.kit.json_depth import JSONDepthGuard
from modelux_server.kit.lifecycle import drain_on_sigterm
from modelux_server.kit.migrations import ensure_migrated
from modelux_server.kit.observe import RequestObserver
from modelux_server.kit.routes import allowed_methods
from modelux_server.kit.schemas import invalid_input
from modelux_server.kit.security_headers import SecurityHeaders, SecurityPolicy
from modelux_server.kit.tracing import start_tracing
from modelux_server.management.openapi import install as describe_openapi
from modelux_server.services import Services

log = logging.getLogger("modelux")


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    services: Services | None = None,
    check_migrations: bool = True,
) -> FastAPI:
    rt = services or build_services(settings, clock)
    tracing = start_tracing(settings)
    rt.tracer = tracing.tracer if tracing is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if check_migrations:
            await ensure_migrated(rt.db)
        async with start_services(rt):
            undo_drain = drain_on_sigterm(rt)
            try:
                yield
            finally:
                undo_drain()
        await rt.db.dispose()
        if tracing is not None:
            await asyncio.to_thread(tracing.shutdown)  # exports the spans still queued

    app = FastAPI(title="modelux-server", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.services = rt
    _mount(app, rt)
    describe_openapi(app)
    policy = SecurityPolicy(public_url=lambda: rt.public_url, form_targets=form_targets(settings))
    _error_handlers(app, policy)
    app.add_middleware(JSONDepthGuard)  # inside BodyGuard: reads only bodies within the size limit
    app.add_middleware(BodyGuard, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders, policy=policy)
    # outermost of ours: its request id and access line cover the guards' refusals too
    app.add_middleware(RequestObserver, access_log=settings.access_log, tracer=rt.tracer)
    return app


def app_from_environment() -> FastAPI:
    """The app of one `modelux serve --workers N` process (uvicorn imports it by name).

    Each worker process reads the same settings from the environment the
    `serve` command checked (and completed with its --host and --port).
    """
    from modelux_server.config import load_settings
    from modelux_server.kit.logs import configure_logging

    settings = load_settings()
    configure_logging(settings)
    return create_app(settings)


def _mount(app: FastAPI, rt: Services) -> None:
    from modelux_server.dashboard.endpoints import mount as mount_dashboard
    from modelux_server.mcp.http import mount as mount_mcp

    for router, prefix in routers():
        app.include_router(router, prefix=prefix)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks = await readiness(rt)
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "degraded", "checks": checks}, 200 if ok else 503)

    mount_mcp(rt, app)
    mount_dashboard(app)


def _error_handlers(app: FastAPI, policy: SecurityPolicy) -> None:
    @app.exception_handler(ModeluxError)
    async def modelux_error(_: Request, exc: ModeluxError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        error = invalid_input(exc.errors())
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        body = {"type": kind, "code": code, "message": str(exc.detail)}
        headers = exc.headers
        allow = allowed_methods(app.router.routes, request.scope) if exc.status_code == 405 else None
        if allow:
            headers = {**(headers or {}), "Allow": allow}
        return JSONResponse({"error": body}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(BodyTooLarge)
    async def too_large(_: Request, exc: BodyTooLarge) -> JSONResponse:
        body = {"type": "invalid_request_error", "code": "body_too_large", "message": str(exc)}
        return JSONResponse({"error": body}, status_code=413)

    @app.exception_handler(DBAPIError)
    @app.exception_handler(OSError)  # a refused connect, before SQLAlchemy wraps anything
    @app.exception_handler(PoolTimeout)
    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            raise exc  # a bug, not an outage: the 500 handler below logs its trace
        return unavailable(request, exc, {})

    def unavailable(request: Request, exc: Exception, headers: dict[str, str]) -> JSONResponse:
        # an outage of ours, not a bug: one line, not a traceback per request
        cause = type(getattr(exc, "orig", None) or exc).__name__
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, cause)
        error = ServiceUnavailable("The service is briefly unavailable; retry in a moment.")
        return JSONResponse(error.body(), status_code=error.status, headers={**headers, "Retry-After": "1"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        body = {
            "type": "api_error",
            "code": "internal_error",
            "message": "Something went wrong on our side.",
        }
        # written outside the middleware stack, so the security headers are added here
        headers = {name.decode(): value.decode() for name, value in policy.for_scope(request.scope)}
        context = request_context.current()  # left in place for this answer (kit/observe.py)
        if context is not None:
            headers["x-request-id"] = context.request_id
        if database_unavailable(exc):  # refused before SQLAlchemy wrapped it (a restart)
            return unavailable(request, exc, headers)
        # the trace goes to our log, never to the client
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": body}, status_code=500, headers=headers)
