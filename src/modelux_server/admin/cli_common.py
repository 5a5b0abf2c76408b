"""What the `modelux admin` command modules share: the group, the operator acting, and
how an organization is named (admin/cli.py has the console's description)."""

from __future__ import annotations

import json
import os
from typing import Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.admin import service
from modelux_server.admin.auth import Operator
from modelux_server.errors import Conflict
from modelux_server.kit.command import fail

admin = typer.Typer(help="Operator commands.", no_args_is_help=True)

OPERATOR = typer.Option(
    None, "--operator", help="Who is acting, as recorded with the action (default: $USER, else 'cli')."
)
AS_JSON = typer.Option(False, "--json", help="Print JSON (the operator API's shape).")
ORG = typer.Argument(..., metavar="ORG", help="An organization id, its name, or an owner's email.")


def operator(name: str | None) -> Operator:
    chosen = (name if name is not None else os.environ.get("USER") or "cli").strip()
    if not chosen or len(chosen) > 90 or not chosen.isprintable():
        fail("--operator: a name of 1 to 90 printable characters", code=2)
    return Operator(chosen, "cli")


async def org_id(session: AsyncSession, ref: str) -> str:
    """The organization `ref` names; several matching is exit 2 (the ids are in the line)."""
    try:
        return await service.resolve(session, ref)
    except Conflict as exc:
        if exc.code != "ambiguous_organization":
            raise
        fail(exc.message, code=2)


def echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2))
