"""SQL for projects. A deleted project keeps its row (`deleted_at`) and is found by no lookup."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import get_owned, list_owned
from modelux_server.models import Project

LIVE = Project.deleted_at.is_(None)


async def get_live(session: AsyncSession, org_id: str, project_id: str) -> Project:
    return await get_owned(session, Project, org_id, project_id, label="project", live=LIVE)


async def list_live(session: AsyncSession, org_id: str, page: PageRequest) -> Page[Project]:
    return await list_owned(session, Project, org_id, page, LIVE)
