"""Management-key authentication for `/manage/v1` and MCP."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.auth.principal import Principal
from modelux_server.auth.repository import management_key_by_token_hash
from modelux_server.auth.tokens import MANAGEMENT_KEY
from modelux_server.errors import Forbidden, Unauthorized
from modelux_server.kit.request_context import bind_caller
from modelux_server.kit.secrets import token_hash
from modelux_server.models import Organization


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
            f"Missing management key. Send 'Authorization: Bearer {MANAGEMENT_KEY}...'.",
            code="missing_api_key",
        )
    if not token.startswith(MANAGEMENT_KEY):
        raise Unauthorized(f"This endpoint needs a management key ({MANAGEMENT_KEY}...).")
    key = await management_key_by_token_hash(session, token_hash(token))
    if key is None or key.revoked_at is not None:
        raise Unauthorized("Invalid or revoked management key.")
    bind_caller(key.org_id)  # the request's log lines name the organization from here on
    org = await session.get(Organization, key.org_id)
    if org is not None and org.suspended_at is not None:
        raise suspended()
    return Principal(org_id=key.org_id, role=key.role, actor=key.id, source=source)


def suspended() -> Forbidden:
    """What a suspended organization's proxy and API calls get: nothing is deleted."""
    return Forbidden(
        "This organization is suspended. Its data is kept; contact your account manager "
        "or support to restore access.",
        code="organization_suspended",
    )
