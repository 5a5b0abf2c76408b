"""Reading the audit log: gated by `audit_log`, reaching back as far as the plan's
retention, filtered, paged newest first, exported as CSV or NDJSON in bounded memory."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.audit import chain
from modelux_server.audit.record import actor_of, record
from modelux_server.auth.principal import Principal
from modelux_server.billing.service import entitlements
from modelux_server.errors import ValidationFailed
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.models import AuditEvent
from modelux_server.services import Services

FEATURE = "audit_log"
EXPORT_BATCH = 1000
# the chained content as a table (the organization is the export's own), and the hash
CSV_COLUMNS = (*(name for name in chain.CONTENT if name != "org_id"), "hash")


@dataclass(frozen=True)
class Filters:
    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None  # an actor id, or a label (email, key name)
    action: str | None = None  # exact, or a prefix ending in "." (`api_key.`)
    target_type: str | None = None
    target_id: str | None = None

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Filters:
        def when(name: str) -> datetime | None:
            value = raw.get(name)
            if value is None:
                return None
            try:
                parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                raise ValidationFailed(
                    f"{name} must be an ISO 8601 time such as 2026-12-01T00:00:00Z", param=name
                ) from None
            if parsed.tzinfo is None:
                raise ValidationFailed(f"{name} needs a time zone (Z or +00:00)", param=name)
            return parsed

        def text(name: str) -> str | None:
            value = raw.get(name)
            if value in (None, ""):
                return None
            value = str(value)
            if len(value) > 320 or "\x00" in value:
                raise ValidationFailed(f"{name} is too long or holds NUL", param=name)
            return value

        return cls(
            when("since"),
            when("until"),
            text("actor"),
            text("action"),
            text("target_type"),
            text("target_id"),
        )


async def _window_start(session: AsyncSession, rt: Services, principal: Principal) -> datetime:
    """The oldest moment the plan lets the organization read back to (402 without the feature)."""
    ent = await entitlements(session, rt, principal.org_id)
    if not ent.has(FEATURE):
        raise ent.feature_error(FEATURE)
    return rt.clock.now() - timedelta(days=ent.plan.audit_retention_days)


def _query(org_id: str, start: datetime, f: Filters) -> Select[Any]:
    stmt = select(AuditEvent).where(AuditEvent.org_id == org_id, AuditEvent.created_at >= start)
    if f.since is not None:
        stmt = stmt.where(AuditEvent.created_at >= f.since)
    if f.until is not None:
        stmt = stmt.where(AuditEvent.created_at < f.until)
    if f.actor is not None:
        stmt = stmt.where(or_(AuditEvent.actor_id == f.actor, AuditEvent.actor_label == f.actor))
    if f.action is not None:
        if f.action.endswith("."):
            stmt = stmt.where(AuditEvent.action.startswith(f.action, autoescape=True))
        else:
            stmt = stmt.where(AuditEvent.action == f.action)
    if f.target_type is not None:
        stmt = stmt.where(AuditEvent.target_type == f.target_type)
    if f.target_id is not None:
        stmt = stmt.where(AuditEvent.target_id == f.target_id)
    return stmt


def _cursor(page: PageRequest) -> int | None:
    if page.cursor is None:
        return None
    if not page.cursor.isdigit() or len(page.cursor) > 18:
        raise ValidationFailed("cursor is not one we handed out", code="invalid_cursor", param="cursor")
    return int(page.cursor)


async def list_events(
    session: AsyncSession, rt: Services, principal: Principal, page: PageRequest, f: Filters
) -> Page[AuditEvent]:
    """Events newest first; `next_cursor` continues after the last one shown."""
    start = await _window_start(session, rt, principal)
    stmt = _query(principal.org_id, start, f)
    after = _cursor(page)
    if after is not None:
        stmt = stmt.where(AuditEvent.seq < after)
    rows = list(await session.scalars(stmt.order_by(AuditEvent.seq.desc()).limit(page.limit + 1)))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page(items=rows, next_cursor=str(rows[-1].seq) if more and rows else None)


def render(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "object": "audit_event",
        "seq": event.seq,
        "created_at": event.created_at.isoformat(),
        "actor": {
            "type": event.actor_type,
            "id": event.actor_id,
            "label": event.actor_label,
            "source": event.source,
            "ip": event.ip,
            "user_agent": event.user_agent,
        },
        "request_id": event.request_id,
        "action": event.action,
        "target": {"type": event.target_type, "id": event.target_id},
        "changes": event.changes,
        "hash": event.hash,
        "prev_hash": event.prev_hash,
    }


async def verify(session: AsyncSession, rt: Services, principal: Principal) -> chain.Verdict:
    await _window_start(session, rt, principal)  # the feature gate
    return await chain.verify(session, principal.org_id)


def render_verdict(v: chain.Verdict) -> dict[str, Any]:
    return {
        "ok": v.ok,
        "events_checked": v.events,
        "broken_at": None if v.ok else {"id": v.broken_at, "seq": v.broken_seq, "reason": v.reason},
    }


async def export_start(
    session: AsyncSession, rt: Services, principal: Principal, kind: str, f: Filters
) -> datetime:
    """Check the gate before a stream starts (a 402 cannot follow a 200's first bytes) and
    put the export itself on the record; the start of the window it may read."""
    start = await _window_start(session, rt, principal)
    await record(
        session,
        rt,
        principal.org_id,
        actor_of(principal),
        "audit_log.exported",
        "audit_log",
        None,
        changes={"format": kind, "filters": {k: v for k, v in vars(f).items() if v is not None}},
    )
    return start


async def export_rows(rt: Services, org_id: str, start: datetime, f: Filters) -> AsyncIterator[AuditEvent]:
    """Every matching event, oldest first, a batch per short read transaction."""
    after = 0
    while True:
        async with rt.db.read_sessionmaker() as session:
            rows = list(
                await session.scalars(
                    _query(org_id, start, f)
                    .where(AuditEvent.seq > after)
                    .order_by(AuditEvent.seq)
                    .limit(EXPORT_BATCH)
                )
            )
            await session.commit()
        for row in rows:
            yield row
        if len(rows) < EXPORT_BATCH:
            return
        after = rows[-1].seq


async def ndjson(rows: AsyncIterator[AuditEvent]) -> AsyncIterator[bytes]:
    async for row in rows:
        yield (json.dumps(render(row), separators=(",", ":")) + "\n").encode()


def _csv_cell(value: Any) -> Any:
    # a cell a spreadsheet would run as a formula is quoted as text
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


async def csv_lines(rows: AsyncIterator[AuditEvent]) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue().encode()
    async for row in rows:
        buffer.seek(0)
        buffer.truncate()
        values = {**chain.content_of(row), "hash": row.hash}
        values["changes"] = json.dumps(row.changes, separators=(",", ":"), sort_keys=True)
        writer.writerow([_csv_cell(values[c]) for c in CSV_COLUMNS])
        yield buffer.getvalue().encode()
