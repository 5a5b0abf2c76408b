"""Write an audit event in the transaction of the change it records.

Callers hand the change's before and after (plain values); what differs becomes the
event's `changes`, with anything that looks like a secret redacted. The organization's
`audit_heads` row is locked for the append, so concurrent changes chain one after
another; rolled back with the change, the event never existed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.audit.actions import ACTIONS, ACTOR_TYPES
from modelux_server.audit.chain import GENESIS, content_of, digest
from modelux_server.auth.principal import Principal
from modelux_server.kit import request_context
from modelux_server.kit.db import insert_unless_present, lock_row
from modelux_server.kit.ids import new_id
from modelux_server.models import AuditEvent, AuditHead, ManagementKey, User
from modelux_server.services import Services

REDACTED = "[redacted]"
# field names whose values are never stored, whatever a caller hands over
# whole names, and name endings, so `max_tokens` or `token_count` stay readable
_SECRET_NAMES = frozenset(
    {
        "secret",
        "password",
        "token",
        "key",
        "api_key",
        "apikey",
        "hash",
        "private_key",
        "secret_key",
        "credential_value",
    }
)
_SECRET_ENDINGS = ("_secret", "_password", "_token", "_hash", "_api_key", "_private_key", "_secret_key")


@dataclass(frozen=True)
class Actor:
    type: str  # audit/actions.py ACTOR_TYPES
    id: str | None = None
    label: str | None = None
    source: str | None = None


STRIPE = Actor("stripe", None, "Stripe", "webhook")
SYSTEM = Actor("system", None, "modelux", "job")


def operator(name: str, via: str) -> Actor:
    return Actor("operator", name, name, via)


def actor_of(principal: Principal) -> Actor:
    """A management key or a dashboard user, through the door it came in by."""
    kind = "user" if principal.actor.startswith("usr_") else "management_key"
    if principal.actor.startswith("scim_"):
        kind = "scim_token"
    return Actor(kind, principal.actor, None, principal.source)


def _secret(name: str) -> bool:
    lowered = name.lower().replace("-", "_")
    return lowered in _SECRET_NAMES or lowered.endswith(_SECRET_ENDINGS)


def _plain(value: Any) -> Any:
    """JSON-native, so the value hashes the same once read back from either database."""
    return json.loads(json.dumps(value, default=str))


def redact(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: (REDACTED if _secret(str(k)) and v is not None else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def changes_between(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, Any]:
    """{field: {"from": old, "to": new}} for each field that differs; secrets redacted."""
    old, new = _plain(dict(before or {})), _plain(dict(after or {}))
    out: dict[str, Any] = {}
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if _secret(key):
            out[key] = {
                "from": REDACTED if a is not None else None,
                "to": REDACTED if b is not None else None,
            }
        else:
            out[key] = {"from": redact(a), "to": redact(b)}
    return out


async def _label(session: AsyncSession, actor: Actor) -> str | None:
    if actor.label is not None or actor.id is None:
        return actor.label
    if actor.type == "user":
        return await session.scalar(select(User.email).where(User.id == actor.id))
    if actor.type == "management_key":
        return await session.scalar(select(ManagementKey.name).where(ManagementKey.id == actor.id))
    return None


def _where() -> tuple[str | None, str | None, str | None]:
    """IP (as the server saw it: trusted proxies' forwarded address), user agent, request id."""
    context = request_context.current()
    if context is None:
        return None, None, None
    client = context.scope.get("client")
    agent = None
    for name, value in context.scope.get("headers") or []:
        if name == b"user-agent":
            agent = value.decode("latin-1")[:500]
            break
    return (client[0][:64] if client else None), agent, context.request_id


async def _advance(session: AsyncSession, org_id: str) -> tuple[int, str]:
    """Lock the organization's chain head and return (the next seq, the previous hash)."""
    await insert_unless_present(session, AuditHead, {"org_id": org_id, "seq": 0, "hash": GENESIS}, ["org_id"])
    head = await lock_row(session, AuditHead, org_id)
    return int(head.seq) + 1, str(head.hash)


async def record(
    session: AsyncSession,
    rt: Services,
    org_id: str,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str | None,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    changes: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the organization's chain, in `session`'s transaction."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}: add it to audit/actions.py")
    if actor.type not in ACTOR_TYPES:
        raise ValueError(f"unknown actor type {actor.type!r}")
    recorded = redact(_plain(dict(changes))) if changes is not None else changes_between(before, after)
    ip, agent, request_id = _where()
    seq, prev = await _advance(session, org_id)
    event = AuditEvent(
        id=new_id("aud"),
        org_id=org_id,
        seq=seq,
        actor_type=actor.type,
        actor_id=actor.id,
        actor_label=(await _label(session, actor) or "")[:320] or None,
        source=actor.source,
        ip=ip,
        user_agent=agent,
        request_id=request_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        changes=recorded,
        prev_hash=prev,
        hash="",
        created_at=rt.clock.now(),
    )
    event.hash = digest(prev, content_of(event))
    session.add(event)
    await session.execute(
        update(AuditHead).where(AuditHead.org_id == org_id).values(seq=seq, hash=event.hash)
    )
    return event
