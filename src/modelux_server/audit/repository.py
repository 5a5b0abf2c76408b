"""SQL for the access review: who and what holds access to one organization, and since when.

Every read is scoped to the organization; each answers for all rows at once (one query
per kind, never one per member or key), so a review costs the same few queries for ten
members or ten thousand keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.member.repository import pending
from modelux_server.models import (
    ApiKey,
    AuditEvent,
    DashboardSession,
    Invitation,
    ManagementKey,
    Membership,
    Organization,
    Project,
    User,
)


async def organization(session: AsyncSession, org_id: str) -> Organization | None:
    return await session.get(Organization, org_id)


async def members(session: AsyncSession, org_id: str) -> Sequence[tuple[Membership, User]]:
    stmt = (
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.org_id == org_id)
        .order_by(Membership.created_at, Membership.id)
    )
    return [(m, u) for m, u in (await session.execute(stmt)).all()]


async def pending_invitations(session: AsyncSession, org_id: str, now: datetime) -> Sequence[Invitation]:
    stmt = (
        select(Invitation)
        .where(Invitation.org_id == org_id, *pending(now))
        .order_by(Invitation.created_at, Invitation.id)
    )
    return (await session.scalars(stmt)).all()


async def accepted_invitations(session: AsyncSession, org_id: str) -> dict[str, Invitation]:
    """The invitation each address joined through (the latest, when it joined more than once)."""
    stmt = (
        select(Invitation)
        .where(Invitation.org_id == org_id, Invitation.accepted_at.is_not(None))
        .order_by(Invitation.accepted_at, Invitation.id)
    )
    return {invitation.email: invitation for invitation in await session.scalars(stmt)}


async def last_logins(session: AsyncSession, org_id: str) -> dict[str, datetime]:
    """When each user last opened a dashboard session in this organization."""
    stmt = (
        select(DashboardSession.user_id, func.max(DashboardSession.created_at))
        .where(DashboardSession.org_id == org_id)
        .group_by(DashboardSession.user_id)
    )
    # max() keeps the column's type, so the times come back aware on SQLite too
    return {user_id: at for user_id, at in (await session.execute(stmt)).all()}


async def management_keys(session: AsyncSession, org_id: str) -> Sequence[ManagementKey]:
    """Every management key, revoked ones included."""
    stmt = (
        select(ManagementKey)
        .where(ManagementKey.org_id == org_id)
        .order_by(ManagementKey.created_at, ManagementKey.id)
    )
    return (await session.scalars(stmt)).all()


async def api_keys(session: AsyncSession, org_id: str) -> Sequence[tuple[ApiKey, Project | None]]:
    """Every project API key with its project (deleted projects' too), revoked keys included."""
    stmt = (
        select(ApiKey, Project)
        .outerjoin(Project, Project.id == ApiKey.project_id)
        .where(ApiKey.org_id == org_id)
        .order_by(ApiKey.created_at, ApiKey.id)
    )
    return [(k, p) for k, p in (await session.execute(stmt)).all()]


async def creators_on_record(
    session: AsyncSession, org_id: str, action: str, target_ids: Iterable[str]
) -> dict[str, AuditEvent]:
    """The audit event that created each target (who made a key the table does not say)."""
    ids = list(target_ids)
    if not ids:
        return {}
    stmt = select(AuditEvent).where(
        AuditEvent.org_id == org_id, AuditEvent.action == action, AuditEvent.target_id.in_(ids)
    )
    return {event.target_id: event for event in await session.scalars(stmt) if event.target_id}


async def labels(session: AsyncSession, org_id: str, actor_ids: Iterable[str]) -> dict[str, str]:
    """A readable name for each user (email) or this organization's management key (name)."""
    ids = set(actor_ids)
    users = [i for i in ids if i.startswith("usr_")]
    keys = [i for i in ids if i.startswith("mk_")]
    found: dict[str, str] = {}
    if users:
        rows: Any = await session.execute(select(User.id, User.email).where(User.id.in_(users)))
        found.update({row[0]: row[1] for row in rows})
    if keys:
        stmt = select(ManagementKey.id, ManagementKey.name).where(
            ManagementKey.org_id == org_id, ManagementKey.id.in_(keys)
        )
        found.update({row[0]: row[1] for row in await session.execute(stmt)})
    return found


async def organization_ids(session: AsyncSession) -> list[str]:
    """Every organization, in id order (`modelux admin audit verify` walks them all)."""
    return list(await session.scalars(select(Organization.id).order_by(Organization.id)))
