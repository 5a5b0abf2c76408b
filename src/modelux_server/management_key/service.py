"""Management keys: organization credentials with a role, shown once.

Every operation needs an admin, and no one hands out or takes away more
than their own role: an admin cannot mint or revoke an owner's key.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.audit.record import SYSTEM, Actor, actor_of, record
from modelux_server.auth import tokens
from modelux_server.auth.principal import Principal
from modelux_server.errors import Conflict, Forbidden
from modelux_server.kit.ids import new_id
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import add
from modelux_server.management_key import repository
from modelux_server.models import ManagementKey
from modelux_server.services import Services


async def issue_management_key(
    session: AsyncSession,
    rt: Services,
    org_id: str,
    *,
    name: str,
    role: str,
    created_by: str | None,
    actor: Actor = SYSTEM,
) -> tuple[ManagementKey, str]:
    """A key for `org_id` with no one's role to check: bootstrap's first key, the operator's.

    `actor` is who the audit log names as having made it.
    """
    minted = tokens.mint(tokens.MANAGEMENT_KEY)
    key = ManagementKey(
        id=new_id("mk"),
        org_id=org_id,
        name=name,
        role=role,
        token_hash=minted.hash,
        hint=minted.hint,
        created_by=created_by,
        created_at=rt.clock.now(),
    )
    await add(session, key)
    await record(
        session, rt, org_id, actor, "management_key.created", "management_key", key.id, after=audited(key)
    )
    return key, minted.token


async def create(
    session: AsyncSession, rt: Services, principal: Principal, *, name: str, role: str
) -> tuple[ManagementKey, str]:
    principal.require("admin")
    if not principal.can_grant(role):
        raise Forbidden(f"A {principal.role} cannot create a key with the {role} role.")
    return await issue_management_key(
        session,
        rt,
        principal.org_id,
        name=name,
        role=role,
        created_by=principal.actor,
        actor=actor_of(principal),
    )


async def list_keys(session: AsyncSession, principal: Principal, page: PageRequest) -> Page[ManagementKey]:
    principal.require("admin")
    return await repository.list_live(session, principal.org_id, page)


async def get(session: AsyncSession, principal: Principal, key_id: str) -> ManagementKey:
    principal.require("admin")
    return await repository.get(session, principal.org_id, key_id)


async def revoke(session: AsyncSession, rt: Services, principal: Principal, key_id: str) -> ManagementKey:
    principal.require("admin")
    key = await repository.get(session, principal.org_id, key_id)
    if not principal.can_grant(key.role):
        raise Forbidden(f"A {principal.role} cannot revoke a key with the {key.role} role.")
    if key.id == principal.actor:
        raise Conflict("A management key cannot revoke itself.", code="cannot_revoke_self")
    if key.revoked_at is None:
        key.revoked_at = rt.clock.now()
        await record(
            session,
            rt,
            principal.org_id,
            actor_of(principal),
            "management_key.revoked",
            "management_key",
            key.id,
            before={"revoked_at": None},
            after={"revoked_at": key.revoked_at},
        )
    return key


def audited(key: ManagementKey) -> dict[str, object]:
    """What an audit event shows of a key: never its secret or the secret's hash."""
    return {"name": key.name, "role": key.role, "hint": key.hint, "created_by": key.created_by}
