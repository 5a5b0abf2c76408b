"""SQL for memberships and invitations, and for what a member's removal ends."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import get_owned, list_owned
from modelux_server.models import Invitation, ManagementKey, Membership, User

# ------------------------------------------------------------------ memberships


async def list_members(session: AsyncSession, org_id: str, page: PageRequest) -> Page[Membership]:
    return await list_owned(session, Membership, org_id, page)


async def get_member(session: AsyncSession, org_id: str, member_id: str) -> Membership:
    return await get_owned(session, Membership, org_id, member_id, label="member")


async def membership_of(session: AsyncSession, org_id: str, user_id: str) -> Membership | None:
    stmt = select(Membership).where(Membership.org_id == org_id, Membership.user_id == user_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def count_owners(session: AsyncSession, org_id: str) -> int:
    stmt = select(func.count()).where(Membership.org_id == org_id, Membership.role == "owner")
    return int((await session.execute(stmt)).scalar_one())


async def owner_emails(session: AsyncSession, org_id: str) -> list[str]:
    stmt = (
        select(User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org_id, Membership.role == "owner")
        .order_by(User.email)
    )
    return list((await session.execute(stmt)).scalars())


async def delete_memberships_of(session: AsyncSession, user_id: str) -> None:
    await session.execute(delete(Membership).where(Membership.user_id == user_id))


async def keys_created_by(
    session: AsyncSession, org_id: str, creators: Iterable[str]
) -> Sequence[ManagementKey]:
    """The organization's management keys, revoked or not, made by these users or keys."""
    stmt = select(ManagementKey).where(
        ManagementKey.org_id == org_id, ManagementKey.created_by.in_(list(creators))
    )
    return (await session.execute(stmt)).scalars().all()


# ------------------------------------------------------------------ invitations


def pending(now: datetime) -> list[ColumnElement[bool]]:
    """An invitation that can still be accepted: neither accepted, revoked nor expired."""
    return [Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None), Invitation.expires_at > now]


async def list_pending_invitations(
    session: AsyncSession, org_id: str, page: PageRequest, now: datetime
) -> Page[Invitation]:
    return await list_owned(session, Invitation, org_id, page, *pending(now))


async def get_invitation(session: AsyncSession, org_id: str, invitation_id: str) -> Invitation:
    return await get_owned(session, Invitation, org_id, invitation_id, label="invitation")


async def has_pending_invitation(session: AsyncSession, org_id: str, email: str, now: datetime) -> bool:
    stmt = select(Invitation.id).where(Invitation.org_id == org_id, Invitation.email == email, *pending(now))
    return (await session.execute(stmt)).first() is not None


async def invitation_by_token_hash(session: AsyncSession, token_hash: str) -> Invitation | None:
    stmt = select(Invitation).where(Invitation.token_hash == token_hash)
    return (await session.execute(stmt)).scalar_one_or_none()


async def claim_invitation(session: AsyncSession, invitation_id: str, now: datetime) -> bool:
    """Mark a pending invitation accepted in one statement; False when it no longer was pending."""
    result = await session.execute(
        update(Invitation)
        .where(Invitation.id == invitation_id, *pending(now))
        .values(accepted_at=now)
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


async def revoke_unaccepted_invitations_from(
    session: AsyncSession, org_id: str, senders: Iterable[str], now: datetime
) -> list[str]:
    """Revoke the organization's unaccepted invitations sent by these users or keys; their ids."""
    result = await session.execute(
        update(Invitation)
        .where(
            Invitation.org_id == org_id,
            Invitation.invited_by.in_(list(senders)),
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .returning(Invitation.id)
    )
    return sorted(result.scalars())
