"""Management keys: organization credentials with a role, shown once."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.auth.principal import Principal
from modelux_server.errors import Conflict, Forbidden
from modelux_server.kit.ids import new_id
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import get_owned, list_owned
from modelux_server.kit.secrets import new_token, token_hash, token_hint
from modelux_server.models import ManagementKey
from modelux_server.runtime import Runtime

PREFIX = "mlx_mk_"


async def issue_management_key(
    session: AsyncSession, rt: Runtime, org_id: str, *, name: str, role: str, created_by: str | None
) -> tuple[ManagementKey, str]:
    token = new_token(PREFIX)
    key = ManagementKey(
        id=new_id("mk"),
        org_id=org_id,
        name=name,
        role=role,
        token_hash=token_hash(token),
        hint=token_hint(token),
        created_by=created_by,
        created_at=rt.clock.now(),
    )
    session.add(key)
    return key, token


async def create(
    session: AsyncSession, rt: Runtime, principal: Principal, *, name: str, role: str
) -> tuple[ManagementKey, str]:
    if not principal.can_grant(role):
        raise Forbidden(f"A {principal.role} cannot create a key with the {role} role.")
    return await issue_management_key(
        session, rt, principal.org_id, name=name, role=role, created_by=principal.actor
    )


async def list_keys(session: AsyncSession, org_id: str, page: PageRequest) -> Page[ManagementKey]:
    return await list_owned(session, ManagementKey, org_id, page, ManagementKey.revoked_at.is_(None))


async def get(session: AsyncSession, org_id: str, key_id: str) -> ManagementKey:
    return await get_owned(session, ManagementKey, org_id, key_id, label="management key")


async def revoke(session: AsyncSession, rt: Runtime, principal: Principal, key_id: str) -> ManagementKey:
    key = await get(session, principal.org_id, key_id)
    if not principal.can_grant(key.role):
        raise Forbidden(f"A {principal.role} cannot revoke a key with the {key.role} role.")
    if key.id == principal.actor:
        raise Conflict("A management key cannot revoke itself.", code="cannot_revoke_self")
    if key.revoked_at is None:
        key.revoked_at = rt.clock.now()
    return key
