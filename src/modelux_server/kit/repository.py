"""Tenant-scoped reads, and the insert, shared by every domain repository.

Every lookup filters by organization: another tenant's object is simply
not found (404), never forbidden (403), so ids leak nothing.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.errors import NotFound
from modelux_server.kit.pagination import Page, PageRequest, paginate

M = TypeVar("M")


async def get_owned(
    session: AsyncSession, model: type[M], org_id: str, obj_id: str, *, label: str, live: Any = None
) -> M:
    table: Any = model
    if "\x00" in obj_id:
        # no id holds one, and PostgreSQL refuses to compare text that does
        raise NotFound(f"No {label} with that id.", code=f"{label.replace(' ', '_')}_not_found")
    stmt = select(model).where(table.id == obj_id, table.org_id == org_id)
    if live is not None:
        stmt = stmt.where(live)
    obj = (await session.execute(stmt)).scalar_one_or_none()
    if obj is None:
        raise NotFound(f"No {label} with id '{obj_id}'.", code=f"{label.replace(' ', '_')}_not_found")
    return obj


async def add(session: AsyncSession, row: M) -> M:
    """Insert `row` now, so a constraint it breaks fails here, inside the operation."""
    session.add(row)
    await session.flush()
    return row


async def list_owned(
    session: AsyncSession, model: type[M], org_id: str, page: PageRequest, *filters: Any
) -> Page[M]:
    table: Any = model
    stmt = select(model).where(table.org_id == org_id, *filters)
    return await paginate(session, stmt, table.id, page)
