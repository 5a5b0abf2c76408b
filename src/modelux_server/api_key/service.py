"""Project API keys (`mlx_sk_`): plan-limited, shown once, stored as a hash."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing.service import reserve_slot
from modelux_server.kit.ids import new_id
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import get_owned, list_owned
from modelux_server.kit.secrets import new_token, token_hash, token_hint
from modelux_server.models import ApiKey
from modelux_server.project import service as projects
from modelux_server.runtime import Runtime

PREFIX = "mlx_sk_"


async def create(
    session: AsyncSession, rt: Runtime, org_id: str, *, project_id: str, name: str
) -> tuple[ApiKey, str]:
    await projects.get(session, org_id, project_id)
    await reserve_slot(session, rt, org_id, "api_keys")
    token = new_token(PREFIX)
    key = ApiKey(
        id=new_id("key"),
        org_id=org_id,
        project_id=project_id,
        name=name,
        token_hash=token_hash(token),
        hint=token_hint(token),
        created_at=rt.clock.now(),
    )
    session.add(key)
    await session.flush()
    return key, token


async def list_keys(
    session: AsyncSession, org_id: str, page: PageRequest, project_id: str | None = None
) -> Page[ApiKey]:
    filters: list[Any] = [ApiKey.revoked_at.is_(None)]
    if project_id:
        filters.append(ApiKey.project_id == project_id)
    return await list_owned(session, ApiKey, org_id, page, *filters)


async def get(session: AsyncSession, org_id: str, key_id: str) -> ApiKey:
    return await get_owned(session, ApiKey, org_id, key_id, label="api key")


async def rename(session: AsyncSession, org_id: str, key_id: str, name: str) -> ApiKey:
    key = await get(session, org_id, key_id)
    key.name = name
    return key


async def revoke(session: AsyncSession, rt: Runtime, org_id: str, key_id: str) -> ApiKey:
    key = await get(session, org_id, key_id)
    if key.revoked_at is None:
        key.revoked_at = rt.clock.now()
    rt.invalidate(token_hash=key.token_hash)
    return key
