"""SQL for authentication: the keys presented to the API and the proxy, and dashboard logins
(the membership a login lands in, sessions and counted attempts, see auth/limits.py).

Users are looked up through organization/repository.py, which owns them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.models import (
    ApiKey,
    DashboardSession,
    LoginAttempt,
    ManagementKey,
    Membership,
)


async def management_key_by_token_hash(session: AsyncSession, token_hash: str) -> ManagementKey | None:
    """The management key with this hash, revoked or not (the caller tells them apart)."""
    stmt = select(ManagementKey).where(ManagementKey.token_hash == token_hash)
    return (await session.execute(stmt)).scalar_one_or_none()


async def api_key_by_token_hash(session: AsyncSession, token_hash: str) -> ApiKey | None:
    """The project key with this hash, revoked or not (the proxy's lookup, cached there)."""
    stmt = select(ApiKey).where(ApiKey.token_hash == token_hash)
    return (await session.execute(stmt)).scalar_one_or_none()


# the credentials whose use is noted (auth/last_used.py), by the kind they are noted under
_USED: dict[str, Any] = {"api_key": ApiKey.__table__, "management_key": ManagementKey.__table__}


async def stamp_last_used(session: AsyncSession, kind: str, stamps: Mapping[str, datetime]) -> None:
    """Move each key's `last_used_at` forward to its stamp, never back.

    One statement run for every key at once. The condition makes it the later of the
    stored time and the new one, so processes flushing in any order agree.
    """
    if not stamps:
        return
    table: Table = _USED[kind]
    stmt = (
        update(table)
        .where(
            table.c.id == bindparam("key_id"),
            or_(table.c.last_used_at.is_(None), table.c.last_used_at < bindparam("used_at")),
        )
        .values(last_used_at=bindparam("used_at"))
    )
    await session.execute(stmt, [{"key_id": key, "used_at": at} for key, at in stamps.items()])


async def first_membership(session: AsyncSession, user_id: str) -> Membership | None:
    """The organization a login lands in: the user's oldest membership."""
    stmt = (
        select(Membership)
        .where(Membership.user_id == user_id)
        .order_by(Membership.created_at, Membership.id)
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def organizations_of(session: AsyncSession, user_id: str) -> list[str]:
    """The ids of every organization the user is a member of."""
    stmt = select(Membership.org_id).where(Membership.user_id == user_id).order_by(Membership.org_id)
    return list(await session.scalars(stmt))


async def session_by_token_hash(session: AsyncSession, token_hash: str) -> DashboardSession | None:
    stmt = select(DashboardSession).where(DashboardSession.token_hash == token_hash)
    return (await session.execute(stmt)).scalar_one_or_none()


async def revoke_sessions_of(session: AsyncSession, org_id: str, user_id: str, now: datetime) -> None:
    """End the user's live dashboard sessions in one organization."""
    await session.execute(
        update(DashboardSession)
        .where(
            DashboardSession.org_id == org_id,
            DashboardSession.user_id == user_id,
            DashboardSession.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )


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
