"""Projects: plan-limited, soft-deleted (deleting one revokes its keys)."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing.service import reserve_slot
from modelux_server.kit.ids import new_id
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import get_owned, list_owned
from modelux_server.models import ApiKey, Project
from modelux_server.runtime import Runtime


async def create(
    session: AsyncSession, rt: Runtime, org_id: str, *, name: str, description: str | None
) -> Project:
    await reserve_slot(session, rt, org_id, "projects")
    project = Project(
        id=new_id("proj"),
        org_id=org_id,
        name=name,
        description=description,
        created_at=rt.clock.now(),
    )
    session.add(project)
    await session.flush()
    return project


async def list_projects(session: AsyncSession, org_id: str, page: PageRequest) -> Page[Project]:
    return await list_owned(session, Project, org_id, page, Project.deleted_at.is_(None))


async def get(session: AsyncSession, org_id: str, project_id: str) -> Project:
    return await get_owned(
        session, Project, org_id, project_id, label="project", live=Project.deleted_at.is_(None)
    )


async def update_project(
    session: AsyncSession, org_id: str, project_id: str, changes: dict[str, object]
) -> Project:
    project = await get(session, org_id, project_id)
    for field in ("name", "description"):
        if field in changes:
            setattr(project, field, changes[field])
    return project


async def delete(session: AsyncSession, rt: Runtime, org_id: str, project_id: str) -> Project:
    project = await get(session, org_id, project_id)
    now = rt.clock.now()
    project.deleted_at = now
    rt.invalidate(configs=True, all_keys=True)
    await session.execute(
        update(ApiKey)
        .where(ApiKey.project_id == project.id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return project
