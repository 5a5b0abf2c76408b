"""`Idempotency-Key` records: the first answer to an unsafe call, replayed on retry.

The promises (docs/security.md states them for users):

* A record belongs to the credential that made the call. Another key of the
  same organization, whatever its role, never sees it: the same header value
  sent with another key is a new request.
* A record lives `TTL`; after that the key is free and the call runs again.
* A record never holds a secret. A freshly minted credential (`key`, `token`
  or `secret` holding an `mlx_...` value) is stored as null beside
  `<field>_shown_once: true`, so a replay tells the client the secret was
  already shown instead of handing it out again.
* A key longer than the column is refused, never truncated: truncation would
  make two different keys share one record.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.auth import tokens
from modelux_server.errors import Conflict, ValidationFailed
from modelux_server.models import IdempotencyKey

TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255  # idempotency_keys.key
SECRET_FIELDS = frozenset({"key", "token", "secret"})
SECRET_PREFIX = tokens.ANY  # every token we hand out
# expired rows removed per recorded call: enough to keep up, never a long delete
PURGE_BATCH = 100
HEADER = "Idempotency-Key"


def check_key(key: str) -> None:
    """Refuse a key that could not be stored exactly as sent."""
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed(
            f"{HEADER} must be at most {MAX_KEY_LENGTH} characters.",
            code="idempotency_key_too_long",
            param=HEADER,
        )
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise ValidationFailed(
            f"{HEADER} must not contain control characters.", code="invalid_idempotency_key", param=HEADER
        )


async def find(
    session: AsyncSession, credential_id: str, key: str, fingerprint: str, now: datetime
) -> IdempotencyKey | None:
    """The live record of this credential's key; an expired one is removed so the call runs again."""
    stmt = select(IdempotencyKey).where(
        IdempotencyKey.credential_id == credential_id, IdempotencyKey.key == key
    )
    record = (await session.execute(stmt)).scalar_one_or_none()
    if record is None:
        return None
    if record.expires_at <= now:
        await session.delete(record)
        await session.flush()
        return None
    if record.request_hash != fingerprint:
        raise Conflict(
            "This Idempotency-Key was used with a different request.", code="idempotency_key_reused"
        )
    return record


async def remember(
    session: AsyncSession,
    *,
    org_id: str,
    credential_id: str,
    key: str,
    method: str,
    path: str,
    fingerprint: str,
    status: int,
    body: dict[str, Any],
    now: datetime,
) -> None:
    await _purge_expired(session, now)
    session.add(
        IdempotencyKey(
            org_id=org_id,
            credential_id=credential_id,
            key=key,
            method=method,
            path=path,
            request_hash=fingerprint,
            status_code=status,
            response_body=redacted(body),
            created_at=now,
            expires_at=now + TTL,
        )
    )


def redacted(value: Any) -> Any:
    """`value` with every minted secret replaced by null and flagged as shown once."""
    if isinstance(value, list):
        return [redacted(item) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for name, item in value.items():
        if name in SECRET_FIELDS and isinstance(item, str) and item.startswith(SECRET_PREFIX):
            out[name] = None
            out[f"{name}_shown_once"] = True
        else:
            out[name] = redacted(item)
    return out


async def _purge_expired(session: AsyncSession, now: datetime) -> None:
    # SKIP LOCKED (PostgreSQL; SQLite has one writer anyway) lets concurrent
    # calls purge side by side instead of queueing on the same rows
    batch = (
        select(IdempotencyKey.id)
        .where(IdempotencyKey.expires_at <= now)
        .limit(PURGE_BATCH)
        .with_for_update(skip_locked=True)
    )
    await session.execute(
        delete(IdempotencyKey)
        .where(IdempotencyKey.id.in_(batch))
        .execution_options(synchronize_session=False)
    )
