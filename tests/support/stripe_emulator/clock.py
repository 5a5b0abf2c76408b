"""A frozen, manually advanced clock plus Stripe's billing-period calendar math.

Like a Stripe test clock, time only moves when a test says so; that keeps proration
amounts exact and tests deterministic.
"""

from __future__ import annotations

import calendar
import threading
import time
from datetime import UTC, datetime


class Clock:
    def __init__(self, start_time: int | None = None) -> None:
        self._now = int(time.time()) if start_time is None else int(start_time)
        self._lock = threading.Lock()

    def now(self) -> int:
        with self._lock:
            return self._now

    def set(self, timestamp: int) -> None:
        with self._lock:
            if timestamp < self._now:
                raise ValueError("the emulator clock cannot go backwards")
            self._now = timestamp


def add_months(anchor: int, months: int) -> int:
    """Anchor + N months, clamping the day like Stripe (Jan 31 -> Feb 28 -> Mar 31).

    Always computed from the original anchor, never from the previous period end, so a
    short month does not permanently pull the billing day earlier.
    """
    dt = datetime.fromtimestamp(anchor, UTC)
    total = dt.month - 1 + months
    year, month = dt.year + total // 12, total % 12 + 1
    day = min(dt.day, calendar.monthrange(year, month)[1])
    return int(dt.replace(year=year, month=month, day=day).timestamp())


def interval_step(anchor: int, interval: str, count: int, n: int) -> int:
    """The timestamp N billing intervals after the anchor."""
    if interval == "month":
        return add_months(anchor, count * n)
    if interval == "year":
        return add_months(anchor, 12 * count * n)
    if interval == "week":
        return anchor + 7 * 86400 * count * n
    if interval == "day":
        return anchor + 86400 * count * n
    raise ValueError(f"unknown interval {interval}")


def next_period_end(anchor: int, interval: str, count: int, after: int) -> int:
    """The first anchor-aligned boundary strictly after ``after``."""
    n = 1
    while (end := interval_step(anchor, interval, count, n)) <= after:
        n += 1
    return end


def format_date(ts: int) -> str:
    # Stripe's invoice line wording: "Unused time on Pro after 15 Jan 2026".
    return datetime.fromtimestamp(ts, UTC).strftime("%d %b %Y").lstrip("0")
