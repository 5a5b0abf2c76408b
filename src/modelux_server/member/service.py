"""Members: users of an organization and their roles.

People join through invitations (member/invitations.py), never directly.
Every operation takes the acting principal and checks its role here (changes
need an admin who may grant the roles involved).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.audit.record import Actor, actor_of, record
from modelux_server.auth import repository as auth_repository
from modelux_server.auth.principal import Principal
from modelux_server.errors import Conflict, Forbidden
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.member import repository
from modelux_server.models import Membership, User
from modelux_server.organization import repository as organizations
from modelux_server.services import Services


@dataclass(frozen=True)
class Member:
    id: str
    user_id: str
    # None when the user was not looked up (a removal's answer) or is gone
    email: str | None
    role: str
    created_at: datetime

    @classmethod
    def of(cls, membership: Membership, user: User | None) -> Member:
        return cls(
            id=membership.id,
            user_id=membership.user_id,
            email=user.email if user is not None else None,
            role=membership.role,
            created_at=membership.created_at,
        )


async def list_members(session: AsyncSession, principal: Principal, page: PageRequest) -> Page[Member]:
    found = await repository.list_members(session, principal.org_id, page)
    users = await organizations.users_by_id(session, [m.user_id for m in found.items])
    return Page(
        items=[Member.of(m, users.get(m.user_id)) for m in found.items], next_cursor=found.next_cursor
    )


async def get(session: AsyncSession, principal: Principal, member_id: str) -> Member:
    return await _with_email(session, await repository.get_member(session, principal.org_id, member_id))


async def change_role(
    session: AsyncSession, rt: Services, principal: Principal, member_id: str, role: str
) -> Member:
    principal.require("admin")
    membership = await repository.get_member(session, principal.org_id, member_id)
    if not (principal.can_grant(role) and principal.can_grant(membership.role)):
        raise Forbidden(f"A {principal.role} cannot change this member to {role}.")
    if membership.role == "owner" and role != "owner":
        await _keep_an_owner(session, principal.org_id)
    before = membership.role
    membership.role = role
    member = await _with_email(session, membership)
    if role != before:
        await record(
            session,
            rt,
            principal.org_id,
            actor_of(principal),
            "member.role_changed",
            "member",
            membership.id,
            before={"role": before},
            after={"role": role},
        )
    return member


async def remove(session: AsyncSession, rt: Services, principal: Principal, member_id: str) -> Member:
    """Remove a member and end everything that acts for them in this organization.

    Their dashboard sessions end, and the management keys they made are revoked,
    together with keys made with those keys: a key is its creator's reach, and
    a removed member must not keep it. Keys made by other members stay. The
    pending invitations sent by them or by those keys are revoked too: one sent
    to their own address would let them back in.
    """
    principal.require("admin")
    membership = await repository.get_member(session, principal.org_id, member_id)
    if not principal.can_grant(membership.role):
        raise Forbidden(f"A {principal.role} cannot remove a {membership.role}.")
    if membership.role == "owner":
        await _keep_an_owner(session, principal.org_id)
    removed = await _with_email(session, membership)
    await session.delete(membership)
    actor = actor_of(principal)
    await record(
        session,
        rt,
        principal.org_id,
        actor,
        "member.removed",
        "member",
        membership.id,
        before={"user_id": membership.user_id, "email": removed.email, "role": membership.role},
    )
    await _end_access(session, rt, actor, membership.org_id, membership.user_id)
    return Member.of(membership, None)


async def owner_emails(session: AsyncSession, org_id: str) -> list[str]:
    """Where the organization's own mail goes (receipts, usage warnings)."""
    return await repository.owner_emails(session, org_id)


async def _with_email(session: AsyncSession, membership: Membership) -> Member:
    users = await organizations.users_by_id(session, [membership.user_id])
    return Member.of(membership, users.get(membership.user_id))


async def _end_access(session: AsyncSession, rt: Services, actor: Actor, org_id: str, user_id: str) -> None:
    now = rt.clock.now()
    await auth_repository.revoke_sessions_of(session, org_id, user_id, now)
    seen: set[str] = set()
    creators = {user_id}
    while creators:
        # revoked keys are walked too: a key made with one may still be live
        made = await repository.keys_created_by(session, org_id, creators)
        creators = set()
        for key in made:
            if key.id in seen:
                continue
            seen.add(key.id)
            creators.add(key.id)
            if key.revoked_at is None:
                key.revoked_at = now
                await record(
                    session,
                    rt,
                    org_id,
                    actor,
                    "management_key.revoked",
                    "management_key",
                    key.id,
                    before={"revoked_at": None},
                    after={"revoked_at": now, "reason": "creator removed"},
                )
    revoked = await repository.revoke_unaccepted_invitations_from(session, org_id, [user_id, *seen], now)
    for invitation_id in revoked:
        await record(
            session,
            rt,
            org_id,
            actor,
            "member.invitation_revoked",
            "invitation",
            invitation_id,
            before={"revoked_at": None},
            after={"revoked_at": now, "reason": "sender removed"},
        )


async def _keep_an_owner(session: AsyncSession, org_id: str) -> None:
    if await repository.count_owners(session, org_id) <= 1:
        raise Conflict("An organization must keep at least one owner.", code="last_owner")
