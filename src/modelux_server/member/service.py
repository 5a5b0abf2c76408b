"""Members: users of an organization and their roles."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.auth.principal import Principal
from modelux_server.errors import Conflict, Forbidden
from modelux_server.kit.ids import new_id
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import get_owned, list_owned
from modelux_server.models import Membership, User
from modelux_server.organization.service import normalize_email
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


async def invite(
    session: AsyncSession, rt: Runtime, principal: Principal, *, email: str, role: str
) -> Membership:
    if not principal.can_grant(role):
        raise Forbidden(f"A {principal.role} cannot add a member with the {role} role.")
    email = normalize_email(email)
    now = rt.clock.now()
    user = (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()
    if user is None:
        user = User(id=new_id("usr"), email=email, name=None, password_hash=None, created_at=now)
        session.add(user)
        await session.flush()
    existing = (
        await session.execute(
            select(Membership).where(Membership.org_id == principal.org_id, Membership.user_id == user.id)
        )
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict(f"{email} is already a member.", code="already_member")
    membership = Membership(
        id=new_id("mem"), org_id=principal.org_id, user_id=user.id, role=role, created_at=now
    )
    session.add(membership)
    await session.flush()
    return membership


async def change_role(session: AsyncSession, principal: Principal, member_id: str, role: str) -> Membership:
    membership = await get(session, principal.org_id, member_id)
    if not (principal.can_grant(role) and principal.can_grant(membership.role)):
        raise Forbidden(f"A {principal.role} cannot change this member to {role}.")
    if membership.role == "owner" and role != "owner":
        await _keep_an_owner(session, principal.org_id)
    membership.role = role
    return membership


async def remove(session: AsyncSession, principal: Principal, member_id: str) -> Membership:
    membership = await get(session, principal.org_id, member_id)
    if not principal.can_grant(membership.role):
        raise Forbidden(f"A {principal.role} cannot remove a {membership.role}.")
    if membership.role == "owner":
        await _keep_an_owner(session, principal.org_id)
    await session.delete(membership)
    return membership


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
