"""`create_app(settings)`: the ASGI app, its middleware and error handlers.

What it is made of and the order its parts start in live in `assembly.py`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelux_server.assembly import build_services, readiness, routers, start_services
from modelux_server.config import Settings
from modelux_server.errors import ModeluxError
from modelux_server.kit.clock import Clock
from modelux_server.kit.http_guards import BodyGuard, BodyTooLarge
from modelux_server.kit.json_depth import JSONDepthGuard
from modelux_server.kit.migrations import ensure_migrated
from modelux_server.kit.schemas import invalid_input
from modelux_server.kit.security_headers import SecurityHeaders
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

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if check_migrations:
            await ensure_migrated(rt.db)
        async with start_services(rt):
            yield
        await rt.db.dispose()

    app = FastAPI(title="modelux-server", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.services = rt
    _mount(app, rt)
    _error_handlers(app)
    app.add_middleware(JSONDepthGuard)  # inside BodyGuard: reads only bodies within the size limit
    app.add_middleware(BodyGuard, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    return app


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


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ModeluxError)
    async def modelux_error(_: Request, exc: ModeluxError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        error = invalid_input(exc.errors())
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        body = {"type": kind, "code": code, "message": str(exc.detail)}
        return JSONResponse({"error": body}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(BodyTooLarge)
    async def too_large(_: Request, exc: BodyTooLarge) -> JSONResponse:
        body = {"type": "invalid_request_error", "code": "body_too_large", "message": str(exc)}
        return JSONResponse({"error": body}, status_code=413)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # the trace goes to our log, never to the client
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = {
            "type": "api_error",
            "code": "internal_error",
            "message": "Something went wrong on our side.",
        }
        return JSONResponse({"error": body}, status_code=500)
