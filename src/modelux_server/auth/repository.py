"""SQL for dashboard logins: users, memberships, sessions and counted attempts (auth/limits.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.models import DashboardSession, LoginAttempt, Membership, Organization, User


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    return (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()


async def first_membership(session: AsyncSession, user_id: str) -> Membership | None:
    """The organization a login lands in: the user's oldest membership."""
    stmt = (
        select(Membership)
        .where(Membership.user_id == user_id)
        .order_by(Membership.created_at, Membership.id)
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def membership(session: AsyncSession, org_id: str, user_id: str) -> Membership | None:
    stmt = select(Membership).where(Membership.org_id == org_id, Membership.user_id == user_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def session_by_token_hash(session: AsyncSession, token_hash: str) -> DashboardSession | None:
    stmt = select(DashboardSession).where(DashboardSession.token_hash == token_hash)
    return (await session.execute(stmt)).scalar_one_or_none()


async def user_and_org(session: AsyncSession, user_id: str, org_id: str) -> tuple[User, Organization] | None:
    user = await session.get(User, user_id)
    org = await session.get(Organization, org_id)
    return None if user is None or org is None else (user, org)


async def count_attempts(session: AsyncSession, key: str, since: datetime) -> tuple[int, datetime | None]:
    """Attempts counted under `key` after `since`, and the oldest of them."""
    stmt = select(func.count(), func.min(LoginAttempt.created_at)).where(
        LoginAttempt.key == key, LoginAttempt.created_at > since
    )
    count, oldest = (await session.execute(stmt)).one()
    return int(count), oldest


async def record_attempts(
    session: AsyncSession, keys: list[str], now: datetime, prune_before: datetime
) -> None:
    # pruning on write keeps the table as small as the longest window without a job
    await session.execute(delete(LoginAttempt).where(LoginAttempt.created_at <= prune_before))
    session.add_all([LoginAttempt(key=key, created_at=now) for key in keys])


async def clear_attempts(session: AsyncSession, key: str) -> None:
    await session.execute(delete(LoginAttempt).where(LoginAttempt.key == key))
