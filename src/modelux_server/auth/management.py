"""Management-key authentication for `/manage/v1` and MCP."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.auth.principal import Principal
from modelux_server.errors import Unauthorized
from modelux_server.kit.secrets import token_hash
from modelux_server.models import ManagementKey

PREFIX = "mlx_mk_"


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authenticate_management_key(
    session: AsyncSession, authorization: str | None, *, source: str = "api"
) -> Principal:
    token = bearer_token(authorization)
    if token is None:
        raise Unauthorized(
            "Missing management key. Send 'Authorization: Bearer mlx_mk_...'.",
            code="missing_api_key",
        )
    if not token.startswith(PREFIX):
        raise Unauthorized("This endpoint needs a management key (mlx_mk_...).")
    key = (
        await session.execute(select(ManagementKey).where(ManagementKey.token_hash == token_hash(token)))
    ).scalar_one_or_none()
    if key is None or key.revoked_at is not None:
        raise Unauthorized("Invalid or revoked management key.")
    return Principal(org_id=key.org_id, role=key.role, actor=key.id, source=source)
