"""SQL for organizations and the people in them (users, and the owners that vouch for one)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.models import Membership, Organization, User


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    """The user at `email`, which must already be canonical (organization.service.canonical_email)."""
    return (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()


async def user_by_id(session: AsyncSession, user_id: str) -> User | None:
    return await session.get(User, user_id)


async def users_by_id(session: AsyncSession, user_ids: Iterable[str]) -> dict[str, User]:
    wanted = set(user_ids)
    if not wanted:
        return {}
    rows = (await session.execute(select(User).where(User.id.in_(wanted)))).scalars()
    return {user.id: user for user in rows}


async def organization_by_id(session: AsyncSession, org_id: str) -> Organization | None:
    return await session.get(Organization, org_id)


async def has_verified_owner(session: AsyncSession, org_id: str) -> bool:
    stmt = select(
        exists().where(
            Membership.org_id == org_id,
            Membership.role == "owner",
            Membership.user_id == User.id,
            User.email_verified_at.is_not(None),
        )
    )
    return bool((await session.execute(stmt)).scalar_one())
