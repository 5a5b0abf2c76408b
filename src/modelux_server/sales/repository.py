"""SQL for sales inquiries: newest-first pages and the per-organization count in a window."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.models import SalesInquiry


async def newest_first(
    session: AsyncSession, page: PageRequest, org_id: str | None = None
) -> Page[SalesInquiry]:
    """Inquiries in descending id order (ids are time-sortable), after `page.cursor`."""
    stmt = select(SalesInquiry)
    if org_id is not None:
        stmt = stmt.where(SalesInquiry.org_id == org_id)
    if page.cursor:
        stmt = stmt.where(SalesInquiry.id < page.cursor)
    stmt = stmt.order_by(SalesInquiry.id.desc()).limit(page.limit + 1)
    rows = list((await session.execute(stmt)).scalars())
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page(items=rows, next_cursor=rows[-1].id if more and rows else None)


async def sent_since(session: AsyncSession, org_id: str, since: datetime) -> tuple[int, datetime | None]:
    """How many inquiries the organization sent after `since`, and when the oldest of them was."""
    stmt = select(func.count(), func.min(SalesInquiry.created_at)).where(
        SalesInquiry.org_id == org_id, SalesInquiry.created_at > since
    )
    count, oldest = (await session.execute(stmt)).one()
    return int(count), oldest
