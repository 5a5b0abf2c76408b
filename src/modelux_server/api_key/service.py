"""Project API keys (`mlx_sk_`): plan-limited, shown once, stored as a hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.api_key import repository
from modelux_server.audit.record import actor_of, record
from modelux_server.auth import tokens
from modelux_server.auth.principal import Principal
from modelux_server.billing.service import reserve_slot
from modelux_server.errors import ValidationFailed
from modelux_server.kit.ids import new_id
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import add
from modelux_server.kit.schemas import iso
from modelux_server.models import ApiKey
from modelux_server.project import service as projects
from modelux_server.services import Services


async def create(
    session: AsyncSession,
    rt: Services,
    principal: Principal,
    *,
    project_id: str,
    name: str,
    rate_limit_per_minute: int | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """The new key and its secret, which is never stored and cannot be shown again.

    `expires_at` (aware, in the future) is when the proxy starts refusing the key.
    """
    principal.require("admin")
    _require_future(rt, expires_at)
    await projects.get(session, principal, project_id)
    await reserve_slot(session, rt, principal.org_id, "api_keys")
    minted = tokens.mint(tokens.API_KEY)
    key = ApiKey(
        id=new_id("key"),
        org_id=principal.org_id,
        project_id=project_id,
        name=name,
        token_hash=minted.hash,
        hint=minted.hint,
        rate_limit_per_minute=rate_limit_per_minute,
        expires_at=expires_at,
        created_at=rt.clock.now(),
    )
    await add(session, key)
    await record(
        session,
        rt,
        principal.org_id,
        actor_of(principal),
        "api_key.created",
        "api_key",
        key.id,
        after=audited(key),
    )
    return key, minted.token


async def list_keys(
    session: AsyncSession, principal: Principal, page: PageRequest, project_id: str | None = None
) -> Page[ApiKey]:
    return await repository.list_live(session, principal.org_id, page, project_id)


async def get(session: AsyncSession, principal: Principal, key_id: str) -> ApiKey:
    return await repository.get(session, principal.org_id, key_id)


async def update(
    session: AsyncSession, rt: Services, principal: Principal, key_id: str, changes: dict[str, object]
) -> ApiKey:
    """Apply the fields a PATCH body set (`ApiKeyUpdate.model_dump(exclude_unset=True)`).

    A new rate limit reaches this process's proxy at the commit, and every
    other process within its key cache's lifetime (a second).
    """
    principal.require("admin")
    key = await repository.get(session, principal.org_id, key_id)
    before = audited(key)
    if changes.get("name") is not None:
        key.name = str(changes["name"])
    if "rate_limit_per_minute" in changes:
        limit = changes["rate_limit_per_minute"]
        key.rate_limit_per_minute = limit if isinstance(limit, int) else None
        rt.invalidate(session, token_hash=key.token_hash)
    if "expires_at" in changes:
        expires_at = changes["expires_at"]
        new_expiry = expires_at if isinstance(expires_at, datetime) else None
        _require_future(rt, new_expiry)
        key.expires_at = new_expiry
        rt.invalidate(session, token_hash=key.token_hash)
    if audited(key) != before:
        await record(
            session,
            rt,
            principal.org_id,
            actor_of(principal),
            "api_key.updated",
            "api_key",
            key.id,
            before=before,
            after=audited(key),
        )
    return key


async def revoke(session: AsyncSession, rt: Services, principal: Principal, key_id: str) -> ApiKey:
    principal.require("admin")
    key = await repository.get(session, principal.org_id, key_id)
    if key.revoked_at is None:
        key.revoked_at = rt.clock.now()
        await record(
            session,
            rt,
            principal.org_id,
            actor_of(principal),
            "api_key.revoked",
            "api_key",
            key.id,
            before={"revoked_at": None},
            after={"revoked_at": key.revoked_at},
        )
    rt.invalidate(session, token_hash=key.token_hash)
    return key


def audited(key: ApiKey) -> dict[str, object]:
    """What an audit event shows of a key: never its secret or the secret's hash."""
    return {
        "name": key.name,
        "project_id": key.project_id,
        "hint": key.hint,
        "rate_limit_per_minute": key.rate_limit_per_minute,
        "expires_at": iso(key.expires_at),
    }


def _require_future(rt: Services, expires_at: datetime | None) -> None:
    # an expiry already past would make a key that never works (or, on update, end one
    # silently); revoking is the way to stop a key now
    if expires_at is not None and expires_at <= rt.clock.now():
        raise ValidationFailed(
            "expires_at: must be in the future; revoke the key (DELETE /manage/v1/api-keys/{id}) "
            "to stop it now.",
            code="invalid_field",
            param="expires_at",
        )
