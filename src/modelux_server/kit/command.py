"""Running a `modelux` command against the assembled services.

The top-level commands (cli.py) and the operator's group (admin/cli.py) share this:
settings read once, the services started for a command, and every failure an operator
can cause or meet told as one `error: ...` line with a non-zero exit, never a
traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import typer

from modelux_server.config import Settings, SettingsError, load_settings
from modelux_server.errors import ModeluxError

T = TypeVar("T")


def fail(message: str, *, code: int) -> NoReturn:
    """One line on stderr, then exit `code`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def with_services(work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(services)` with the billing processor and a ledger-reading counter.

    Exit 1 for a refused operation (the service's message), 4 when the database cannot
    be reached, 2 for a plan catalog that does not load.
    """
    from modelux_server.assembly import build_services, start_services
    from modelux_server.kit.db import database_unavailable
    from modelux_server.kit.preflight import where
    from modelux_server.plans.catalog import CatalogError

    settings = settings_or_exit()
    try:
        rt = build_services(settings)
    except CatalogError as exc:
        fail(str(exc), code=2)

    async def main() -> T:
        try:
            async with start_services(rt, role="command"):
                return await work(rt)
        finally:
            await rt.db.dispose()

    try:
        return asyncio.run(main())
    except ModeluxError as exc:
        fail(exc.message, code=1)
    except Exception as exc:
        if database_unavailable(exc):
            fail(f"cannot reach the database at {where(settings.resolved_database_url)}", code=4)
        raise
