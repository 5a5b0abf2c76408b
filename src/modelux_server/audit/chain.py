"""The hash chain: each event's hash covers its content and the previous event's hash.

    hash = sha256(prev_hash || "\\n" || canonical JSON of the event's content)

The first event of an organization chains from 64 zeros. Editing a row changes its
content (its hash no longer matches); deleting one leaves a gap in `seq` and a
`prev_hash` that matches nothing; both are found by `verify`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.models import AuditEvent, AuditHead

GENESIS = "0" * 64
# the fields the hash covers (everything but the hash itself and the previous hash,
# which is mixed in separately)
CONTENT = (
    "id",
    "org_id",
    "seq",
    "created_at",
    "actor_type",
    "actor_id",
    "actor_label",
    "source",
    "ip",
    "user_agent",
    "request_id",
    "action",
    "target_type",
    "target_id",
    "changes",
)


def content_of(event: AuditEvent) -> dict[str, Any]:
    values = {name: getattr(event, name) for name in CONTENT}
    values["created_at"] = event.created_at.isoformat(timespec="microseconds")
    return values


def digest(prev_hash: str, content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True)
class Verdict:
    org_id: str
    events: int
    ok: bool
    broken_at: str | None = None  # the id of the first event that does not fit (or the head)
    broken_seq: int | None = None
    reason: str | None = None


async def verify(session: AsyncSession, org_id: str, batch: int = 2000) -> Verdict:
    """Walk the organization's chain in order and name the first link that does not hold."""
    prev, expected, checked, last = GENESIS, 1, 0, None
    while True:
        rows = list(
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.org_id == org_id, AuditEvent.seq >= expected)
                .order_by(AuditEvent.seq)
                .limit(batch)
            )
        )
        for row in rows:
            checked += 1
            if row.seq != expected:
                return Verdict(org_id, checked, False, row.id, row.seq, f"event {expected} is missing")
            if row.prev_hash != prev:
                return Verdict(
                    org_id, checked, False, row.id, row.seq, "it does not follow the event before it"
                )
            if digest(row.prev_hash, content_of(row)) != row.hash:
                return Verdict(org_id, checked, False, row.id, row.seq, "its content does not match its hash")
            prev, expected, last = row.hash, expected + 1, row
        if len(rows) < batch:
            break
    head = await session.get(AuditHead, org_id)
    if head is not None and (head.seq != expected - 1 or head.hash != prev):
        return Verdict(
            org_id,
            checked,
            False,
            last.id if last else None,
            head.seq,
            f"the chain ends at event {expected - 1} but its head names event {head.seq}",
        )
    return Verdict(org_id, checked, True)
