"""SQL for management keys. A revoked key keeps its row; lists show live keys only."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import get_owned, list_owned
from modelux_server.models import ManagementKey


async def get(session: AsyncSession, org_id: str, key_id: str) -> ManagementKey:
    return await get_owned(session, ManagementKey, org_id, key_id, label="management key")


async def list_live(session: AsyncSession, org_id: str, page: PageRequest) -> Page[ManagementKey]:
    return await list_owned(session, ManagementKey, org_id, page, ManagementKey.revoked_at.is_(None))
