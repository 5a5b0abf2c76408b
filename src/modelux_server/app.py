"""Assembly: `create_app(settings)` builds the runtime and mounts every surface."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelux_server.billing.catalog import load_catalog
from modelux_server.config import Settings
from modelux_server.errors import ModeluxError
from modelux_server.kit.clock import Clock, SystemClock
from modelux_server.kit.db import Database
from modelux_server.kit.http_guards import BodyGuard, BodyTooLarge
from modelux_server.kit.json_depth import JSONDepthGuard
from modelux_server.kit.migrations import ensure_migrated
from modelux_server.kit.schemas import error_code
from modelux_server.kit.secrets import Encryptor
from modelux_server.kit.security_headers import SecurityHeaders
from modelux_server.runtime import Runtime

log = logging.getLogger("modelux")

# Parts that need the runtime at start-up register here (proxy counters,
# billing provider, mailer, workers); each returns an async context manager.
Startup = Callable[[Runtime], Any]


def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    return Runtime(
        settings=settings,
        db=Database(settings.resolved_database_url),
        catalog=load_catalog(settings.plan_catalog),
        clock=clock or SystemClock(),
        encryptor=Encryptor(settings.resolved_secret_key()),
    )


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    runtime: Runtime | None = None,
    check_migrations: bool = True,
) -> FastAPI:
    rt = runtime or build_runtime(settings, clock)
    startups: list[Startup] = _parts()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if check_migrations:
            await ensure_migrated(rt.db)
        async with AsyncExitStack() as stack:
            for startup in startups:
                await stack.enter_async_context(startup(rt))
            yield
        await rt.db.dispose()

    app = FastAPI(title="modelux-server", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.runtime = rt
    _mount(app, rt)
    _error_handlers(app)
    app.add_middleware(JSONDepthGuard)  # inside BodyGuard: reads only bodies within the size limit
    app.add_middleware(BodyGuard, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    return app


def _parts() -> list[Startup]:
    from modelux_server import parts

    return parts.startups()


def _mount(app: FastAPI, rt: Runtime) -> None:
    from modelux_server import parts

    for router, prefix in parts.routers():
        app.include_router(router, prefix=prefix)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks = await parts.readiness(rt)
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "degraded", "checks": checks}, 200 if ok else 503)

    for mount in parts.mounts(rt):
        mount(app)


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ModeluxError)
    async def modelux_error(_: Request, exc: ModeluxError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
        if first.get("type") == "json_invalid":
            body: dict[str, Any] = {
                "type": "invalid_request_error",
                "code": "invalid_json",
                "message": "The body is not valid JSON.",
            }
            return JSONResponse({"error": body}, status_code=400)
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        param = ".".join(loc) or None
        kind = str(first.get("type", ""))
        code = error_code(kind)
        if kind == "model_attributes_type" or (kind == "missing" and not loc):
            return JSONResponse(
                {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "invalid_json",
                        "message": "The body must be a JSON object.",
                    }
                },
                status_code=400,
            )
        message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
        body = {
            "type": "invalid_request_error",
            "code": code,
            "message": message,
            "param": param,
        }
        return JSONResponse({"error": body}, status_code=422)

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
