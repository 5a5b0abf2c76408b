"""The `modelux` command: serve, migrate, bootstrap and the operator's `admin` group."""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

import typer

from modelux_server.admin.cli import admin
from modelux_server.config import Settings
from modelux_server.kit.command import fail as _fail
from modelux_server.kit.command import settings_or_exit as _settings
from modelux_server.kit.command import with_services as _with_services
from modelux_server.plans.catalog import CatalogError, load_catalog

app = typer.Typer(help="modelux-server: an LLM control plane.", no_args_is_help=True, add_completion=False)
app.add_typer(admin, name="admin")


@app.command()
def serve(
    host: str = typer.Option(None, help="Bind address (default MODELUX_HOST)."),
    port: int = typer.Option(None, help="Port (default MODELUX_PORT, 8080)."),
    workers: int = typer.Option(
        None,
        "--workers",
        min=1,
        max=256,
        help="Processes sharing the port (default MODELUX_WORKERS; the CPU count on PostgreSQL and "
        "Redis, else 1).",
    ),
    with_worker: bool = typer.Option(
        None,
        "--with-worker/--without-worker",
        help="Also run the background jobs in this process (default: only without Redis/PostgreSQL).",
    ),
    migrate: bool = typer.Option(False, "--migrate", help="Apply migrations before serving."),
) -> None:
    """Run the proxy, management API, dashboard, MCP and webhooks on one port."""
    import os

    import uvicorn

    from modelux_server.kit.logs import configure_logging
    from modelux_server.kit.migrations import upgrade
    from modelux_server.kit.preflight import DataDirLocked, lock_embedded_database
    from modelux_server.kit.supervisor import run_processes

    overrides = {
        "host": host,
        "port": port,
        "workers": workers,
        "serve_runs_worker": with_worker,
    }
    # written to the environment, where each worker process reads its settings
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"MODELUX_{name.upper()}"] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
    settings = _settings()
    configure_logging(settings)
    count = settings.resolved_workers
    if count > 1 and not settings.shared_counters:
        _fail(
            f"--workers {count} needs shared counters: set MODELUX_DATABASE_URL (PostgreSQL) and "
            "MODELUX_REDIS_URL. On the embedded default each process would count on its own and "
            "the monthly caps would not hold.",
            code=2,
        )
    lock = None
    if settings.is_sqlite:
        try:
            lock = lock_embedded_database(Path(settings.resolved_database_url.split(":///", 1)[1]))
        except DataDirLocked as exc:
            _fail(str(exc), code=2)
    _preflight(settings, redis=True)
    if migrate:
        upgrade(settings.resolved_database_url)
    _schema_ready(settings)
    try:
        load_catalog(settings.plan_catalog)
    except CatalogError as exc:
        _fail(str(exc), code=2)
    background = "with background jobs" if settings.serve_runs_background else "no background jobs"
    serving = (
        f"modelux serving on http://{settings.host}:{settings.port} ({count} process"
        f"{'es' if count > 1 else ''}, {background}; links use {settings.resolved_public_url})"
    )
    if settings.log_format == "json":  # a log collector reads stderr: every line one JSON object
        logging.getLogger("modelux").info(serving)
    else:
        typer.echo(serving, err=True)
    config = uvicorn.Config(
        "modelux_server.app:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,  # our logging (kit/logs.py), configured in every process
        access_log=False,  # ours is kit/observe.py's access middleware, with the request's org and route
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_seconds),
        # uvicorn believes X-Forwarded-For from loopback unless told otherwise;
        # then anyone on the host (or a misrouted proxy) picks the client address
        # the login and signup limits count. Only the configured proxies are believed.
        proxy_headers=bool(settings.trusted_proxy_list),
        forwarded_allow_ips=settings.trusted_proxy_list or [],
    )
    if count > 1:
        raise typer.Exit(run_processes(config, count))
    # uvicorn re-raises the SIGTERM it handled once its shutdown is over: this
    # handler takes it, so a graceful stop exits 0
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.Server(config).run()  # exits 3 itself when the app fails to start
    if lock is not None:
        lock.close()


@app.command()
def worker() -> None:
    """Run the background jobs (email outbox, billing reconcile, ...) apart from serving."""
    from modelux_server.jobs.runner import run_worker
    from modelux_server.kit.logs import configure_logging

    settings = _settings()
    configure_logging(settings)
    _preflight(settings)
    _schema_ready(settings)
    try:
        asyncio.run(run_worker(settings))
    except CatalogError as exc:
        _fail(str(exc), code=2)


def _preflight(settings: Settings, *, redis: bool = False) -> None:
    """One readable line for an unreachable dependency.

    PostgreSQL: exit 4, nothing works without it. Redis (`serve` only): a
    warning, and serving goes on: the counter reconnects by itself, and until
    then proxy requests answer 503 (or pass uncounted with fail_open) and
    /readyz says so, as when Redis goes away later.
    """
    from modelux_server.kit.preflight import Unreachable, check_database, check_redis

    try:
        asyncio.run(check_database(settings.resolved_database_url))
    except Unreachable as exc:
        _fail(str(exc), code=4)
    if redis and settings.redis_url:
        try:
            asyncio.run(check_redis(settings.redis_url))
        except Unreachable as exc:
            mode = "503 for proxy requests" if settings.redis_unavailable == "fail_closed" else "uncounted"
            typer.echo(f"warning: {exc}; serving anyway ({mode} until it is back)", err=True)


def _schema_ready(settings: Settings) -> None:
    """Exit 3 with the reason when the schema is behind the code (4 when the database went away)."""
    from modelux_server.kit.db import database_unavailable
    from modelux_server.kit.migrations import NotMigrated
    from modelux_server.kit.preflight import where

    try:
        asyncio.run(_check_schema(settings.resolved_database_url))
    except NotMigrated as exc:
        _fail(str(exc), code=3)
    except Exception as exc:
        if database_unavailable(exc):
            _fail(f"lost the database at {where(settings.resolved_database_url)} while starting", code=4)
        raise


async def _check_schema(url: str) -> None:
    from modelux_server.kit.db import Database
    from modelux_server.kit.migrations import ensure_migrated

    db = Database(url)
    try:
        await ensure_migrated(db)
    finally:
        await db.dispose()


@app.command()
def migrate() -> None:
    """Apply the database schema (Alembic) up to the newest revision."""
    from modelux_server.kit.migrations import head_revision, upgrade

    settings = _settings()
    _preflight(settings)
    upgrade(settings.resolved_database_url)
    typer.echo(f"database at revision {head_revision(settings.resolved_database_url)}")


@app.command()
def bootstrap(
    org: str = typer.Option(..., "--org", help="Organization name."),
    email: str = typer.Option(..., "--email", help="The owner's email."),
) -> None:
    """Create an organization on Free, its owner and a management key (printed once)."""
    from modelux_server.organization.service import create_organization

    password = secrets.token_urlsafe(12)

    async def work(rt: Any) -> Any:
        async with rt.db.session() as session:
            # the operator vouches for the address, so no confirmation link is needed
            return await create_organization(
                session, rt, name=org, owner_email=email, owner_password=password, owner_verified=True
            )

    created = _with_services(work)
    typer.echo(f"organization   {created.org.id} ({created.org.name}) on the Free plan")
    typer.echo(f"owner          {created.owner.email}")
    typer.echo(f"password       {password}   (shown once; log in at /login)")
    typer.echo(f"management key {created.management_key}   (shown once)")


@app.command("mcp")
def mcp_stdio(
    url: str = typer.Option(
        None, "--url", envvar="MODELUX_MCP_URL", help="The modelux server, e.g. http://host:8080."
    ),
    key: str = typer.Option(None, "--key", envvar="MODELUX_MCP_KEY", help="A management key (mlx_mk_...)."),
) -> None:
    """Serve the MCP tools over stdio for desktop assistants, forwarding to a server's management API."""
    from urllib.parse import urlsplit

    from modelux_server.mcp.stdio import serve_stdio

    # stderr only: stdout is the protocol channel
    if not url or urlsplit(url).scheme not in ("http", "https"):
        typer.echo("error: give the server as --url http(s)://host:port or MODELUX_MCP_URL", err=True)
        raise typer.Exit(2)
    if not key:
        typer.echo("error: give a management key as --key mlx_mk_... or MODELUX_MCP_KEY", err=True)
        raise typer.Exit(2)
    asyncio.run(serve_stdio(url, key))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
