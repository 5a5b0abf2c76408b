"""The operator's table of the outbox (`modelux admin notifications`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from modelux_server.models import Notification

_COLUMNS = ("ID", "CREATED", "ORG", "KIND", "STATUS", "TRIES", "WHEN", "TO", "SUBJECT")


def _when(row: Notification) -> str:
    # what the operator wants to know next: when it went, or when it tries again
    if row.status == "sent" and row.sent_at is not None:
        return f"sent {_short(row.sent_at)}"
    if row.status == "queued":
        return f"next {_short(row.next_attempt_at)}"
    return "gave up"


def _short(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S")


def format_table(rows: Sequence[Notification]) -> str:
    if not rows:
        return "no notifications"
    cells = [
        (
            row.id,
            _short(row.created_at),
            row.org_id,
            row.kind,
            row.status,
            str(row.attempts),
            _when(row),
            ", ".join(row.recipients) or "-",
            row.subject,
        )
        for row in rows
    ]
    widths = [max(len(col), *(len(c[i]) for c in cells)) for i, col in enumerate(_COLUMNS)]
    lines = ["  ".join(col.ljust(w) for col, w in zip(_COLUMNS, widths, strict=True)).rstrip()]
    for row, cell in zip(rows, cells, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip())
        if row.last_error and row.status != "sent":
            lines.append(f"    last error: {row.last_error}")
    return "\n".join(lines)
