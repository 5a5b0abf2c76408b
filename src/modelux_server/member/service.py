"""Members: users of an organization and their roles.

People join through invitations (member/invitations.py), never directly.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.auth.principal import Principal
from modelux_server.errors import Conflict, Forbidden
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import get_owned, list_owned
from modelux_server.models import DashboardSession, Invitation, ManagementKey, Membership, User
from modelux_server.runtime import Runtime


async def list_members(session: AsyncSession, org_id: str, page: PageRequest) -> Page[Membership]:
    return await list_owned(session, Membership, org_id, page)


async def users_by_id(session: AsyncSession, user_ids: list[str]) -> dict[str, User]:
    if not user_ids:
        return {}
    rows = (await session.execute(select(User).where(User.id.in_(user_ids)))).scalars()
    return {u.id: u for u in rows}


async def get(session: AsyncSession, org_id: str, member_id: str) -> Membership:
    return await get_owned(session, Membership, org_id, member_id, label="member")


async def change_role(session: AsyncSession, principal: Principal, member_id: str, role: str) -> Membership:
    membership = await get(session, principal.org_id, member_id)
    if not (principal.can_grant(role) and principal.can_grant(membership.role)):
        raise Forbidden(f"A {principal.role} cannot change this member to {role}.")
    if membership.role == "owner" and role != "owner":
        await _keep_an_owner(session, principal.org_id)
    membership.role = role
    return membership


async def remove(session: AsyncSession, rt: Runtime, principal: Principal, member_id: str) -> Membership:
    """Remove a member and end everything that acts for them in this organization.

    Their dashboard sessions end, and the management keys they made are revoked,
    together with keys made with those keys: a key is its creator's reach, and
    a removed member must not keep it. Keys made by other members stay. The
    pending invitations sent by them or by those keys are revoked too: one sent
    to their own address would let them back in.
    """
    membership = await get(session, principal.org_id, member_id)
    if not principal.can_grant(membership.role):
        raise Forbidden(f"A {principal.role} cannot remove a {membership.role}.")
    if membership.role == "owner":
        await _keep_an_owner(session, principal.org_id)
    await session.delete(membership)
    await _end_access(session, rt, membership.org_id, membership.user_id)
    return membership


async def _end_access(session: AsyncSession, rt: Runtime, org_id: str, user_id: str) -> None:
    now = rt.clock.now()
    await session.execute(
        update(DashboardSession)
        .where(
            DashboardSession.org_id == org_id,
            DashboardSession.user_id == user_id,
            DashboardSession.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    seen: set[str] = set()
    creators = {user_id}
    while creators:
        # revoked keys are walked too: a key made with one may still be live
        made = (
            await session.execute(
                select(ManagementKey).where(
                    ManagementKey.org_id == org_id, ManagementKey.created_by.in_(creators)
                )
            )
        ).scalars()
        creators = set()
        for key in made:
            if key.id in seen:
                continue
            seen.add(key.id)
            creators.add(key.id)
            if key.revoked_at is None:
                key.revoked_at = now
    await session.execute(
        update(Invitation)
        .where(
            Invitation.org_id == org_id,
            Invitation.invited_by.in_([user_id, *seen]),
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )


async def _keep_an_owner(session: AsyncSession, org_id: str) -> None:
    owners = (
        await session.execute(
            select(func.count()).where(Membership.org_id == org_id, Membership.role == "owner")
        )
    ).scalar_one()
    if owners <= 1:
        raise Conflict("An organization must keep at least one owner.", code="last_owner")


async def owner_emails(session: AsyncSession, org_id: str) -> list[str]:
    stmt = (
        select(User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org_id, Membership.role == "owner")
        .order_by(User.email)
    )
    return list((await session.execute(stmt)).scalars())
