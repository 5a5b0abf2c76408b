"""A budget's period: the stretch of time its spend adds up over, in UTC.

daily    00:00 to 00:00
weekly   Monday 00:00 to the next Monday (ISO weeks)
monthly  the 1st 00:00 to the next 1st
billing  the organization's billing window (kit/windows.py, the plan's anchor day)

Each period has a key (`d20261202`, `w20261130`, `m20261201`, `b20261128`) that names
its counter and ledger row: a new period is a new key, so spend and alerts re-arm.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from modelux_server.kit.windows import window_at

PERIODS = ("daily", "weekly", "monthly", "billing")


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime
    key: str


def _day(now: datetime) -> datetime:
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def period_at(kind: str, now: datetime, anchor_day: int) -> Period:
    now = now.astimezone(UTC)
    if kind == "daily":
        start = _day(now)
        return Period(start, start + timedelta(days=1), f"d{start:%Y%m%d}")
    if kind == "weekly":
        start = _day(now) - timedelta(days=now.weekday())
        return Period(start, start + timedelta(days=7), f"w{start:%Y%m%d}")
    if kind == "monthly":
        start = datetime(now.year, now.month, 1, tzinfo=UTC)
        end = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)
        return Period(start, end, f"m{start:%Y%m%d}")
    if kind == "billing":
        window = window_at(anchor_day, now)
        return Period(window.start, window.end, f"b{window.key}")
    raise ValueError(f"unknown budget period {kind!r}")
