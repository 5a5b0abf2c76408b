"""Monthly request windows anchored on a day of the month.

The window starts at 00:00 UTC on the anchor day (the subscription's billing
cycle anchor day, or the organization's creation day on Free). In a month
without that day (the 31st in April, the 29th-31st in February) the window
starts on the month's last day; the next month goes back to the anchor day.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @cached_property
    def key(self) -> str:
        """A stable name for the window, used in counter keys."""
        return f"{self.start.year:04d}{self.start.month:02d}{self.start.day:02d}"


def _start_in_month(year: int, month: int, anchor_day: int) -> datetime:
    last = calendar.monthrange(year, month)[1]
    return datetime(year, month, min(anchor_day, last), tzinfo=UTC)


def _shift(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def window_at(anchor_day: int, now: datetime) -> Window:
    if not 1 <= anchor_day <= 31:
        raise ValueError(f"anchor day must be 1..31, got {anchor_day}")
    now = now.astimezone(UTC)
    start = _start_in_month(now.year, now.month, anchor_day)
    if start > now:
        year, month = _shift(now.year, now.month, -1)
        start = _start_in_month(year, month, anchor_day)
    year, month = _shift(start.year, start.month, 1)
    return Window(start=start, end=_start_in_month(year, month, anchor_day))


class WindowCache:
    """`window_at` for the hot path, computed once per anchor day and UTC date.

    A window changes only at 00:00 UTC, so the answer for a given day holds all day.
    Past 256 entries (anchor days times dates) the cache starts over, which keeps a
    long-running process's copy small.
    """

    __slots__ = ("_windows",)

    def __init__(self) -> None:
        self._windows: dict[tuple[int, date], Window] = {}

    def at(self, anchor_day: int, now: datetime) -> Window:
        key = (anchor_day, now.astimezone(UTC).date())
        found = self._windows.get(key)
        if found is None:
            if len(self._windows) > 256:
                self._windows.clear()
            found = self._windows[key] = window_at(anchor_day, now)
        return found
