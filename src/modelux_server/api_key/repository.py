"""SQL for project API keys. A revoked key keeps its row; lists show live keys only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import get_owned, list_owned
from modelux_server.models import ApiKey


async def get(session: AsyncSession, org_id: str, key_id: str) -> ApiKey:
    """Live or revoked: a revoked key can still be read and revoked again."""
    return await get_owned(session, ApiKey, org_id, key_id, label="api key")


async def list_live(
    session: AsyncSession, org_id: str, page: PageRequest, project_id: str | None = None
) -> Page[ApiKey]:
    filters: list[Any] = [ApiKey.revoked_at.is_(None)]
    if project_id:
        filters.append(ApiKey.project_id == project_id)
    return await list_owned(session, ApiKey, org_id, page, *filters)


async def revoke_for_project(session: AsyncSession, project_id: str, now: datetime) -> list[str]:
    """Revoke the project's live keys; their ids, for the audit log."""
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.project_id == project_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(ApiKey.id)
    )
    return sorted(result.scalars())
