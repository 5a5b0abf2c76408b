"""Projects: plan-limited, soft-deleted (deleting one revokes its keys).

Every operation takes the acting principal and checks its role here, so the
management API, the dashboard and the MCP tools cannot disagree about it.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.api_key import repository as api_keys
from modelux_server.audit.record import actor_of, record
from modelux_server.auth.principal import Principal
from modelux_server.billing.service import reserve_slot
from modelux_server.kit.ids import new_id
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import add
from modelux_server.models import Project
from modelux_server.project import repository
from modelux_server.services import Services


async def create(
    session: AsyncSession, rt: Services, principal: Principal, *, name: str, description: str | None
) -> Project:
    principal.require("admin")
    await reserve_slot(session, rt, principal.org_id, "projects")
    project = Project(
        id=new_id("proj"),
        org_id=principal.org_id,
        name=name,
        description=description,
        created_at=rt.clock.now(),
    )
    await add(session, project)
    await record(
        session,
        rt,
        principal.org_id,
        actor_of(principal),
        "project.created",
        "project",
        project.id,
        after=audited(project),
    )
    return project


async def list_projects(session: AsyncSession, principal: Principal, page: PageRequest) -> Page[Project]:
    return await repository.list_live(session, principal.org_id, page)


async def get(session: AsyncSession, principal: Principal, project_id: str) -> Project:
    """The organization's live project, or 404 (also for the keys and configs that hang off one)."""
    return await repository.get_live(session, principal.org_id, project_id)


async def update(
    session: AsyncSession, rt: Services, principal: Principal, project_id: str, changes: dict[str, object]
) -> Project:
    """Apply the fields a PATCH body set (`ProjectUpdate.model_dump(exclude_unset=True)`)."""
    principal.require("admin")
    project = await repository.get_live(session, principal.org_id, project_id)
    before = audited(project)
    for field in ("name", "description"):
        if field in changes:
            setattr(project, field, changes[field])
    if audited(project) != before:
        await record(
            session,
            rt,
            principal.org_id,
            actor_of(principal),
            "project.updated",
            "project",
            project.id,
            before=before,
            after=audited(project),
        )
    return project


async def delete(session: AsyncSession, rt: Services, principal: Principal, project_id: str) -> Project:
    principal.require("admin")
    project = await repository.get_live(session, principal.org_id, project_id)
    now = rt.clock.now()
    project.deleted_at = now
    revoked = await api_keys.revoke_for_project(session, project.id, now)
    actor = actor_of(principal)
    await record(
        session,
        rt,
        principal.org_id,
        actor,
        "project.deleted",
        "project",
        project.id,
        before=audited(project),
    )
    for key_id in revoked:
        await record(
            session,
            rt,
            principal.org_id,
            actor,
            "api_key.revoked",
            "api_key",
            key_id,
            before={"revoked_at": None},
            after={"revoked_at": now, "reason": "project deleted"},
        )
    rt.invalidate(session, configs=True, all_keys=True)
    return project


def audited(project: Project) -> dict[str, object]:
    """What an audit event shows of a project."""
    return {"name": project.name, "description": project.description}
