from datetime import UTC, datetime

from modelux_server.kit.windows import window_at


def d(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_window_starts_on_the_anchor_day() -> None:
    w = window_at(14, d(2026, 11, 28, 9))
    assert (w.start, w.end) == (d(2026, 11, 14), d(2026, 12, 14))


def test_before_the_anchor_day_the_window_began_last_month() -> None:
    w = window_at(14, d(2026, 12, 13, 23, 59))
    assert (w.start, w.end) == (d(2026, 11, 14), d(2026, 12, 14))
    assert window_at(14, d(2026, 12, 14)).start == d(2026, 12, 14)


def test_the_31st_falls_on_the_last_day_of_short_months() -> None:
    assert window_at(31, d(2026, 4, 30, 1)).start == d(2026, 4, 30)
    assert window_at(31, d(2026, 4, 29)).start == d(2026, 3, 31)
    assert window_at(31, d(2026, 3, 31)).end == d(2026, 4, 30)
    assert window_at(31, d(2026, 4, 30)).end == d(2026, 5, 31)


def test_february_and_leap_years() -> None:
    assert window_at(30, d(2026, 2, 28, 5)).start == d(2026, 2, 28)
    assert window_at(30, d(2026, 2, 28)).end == d(2026, 3, 30)
    assert window_at(29, d(2028, 2, 29)).start == d(2028, 2, 29)
    assert window_at(29, d(2027, 2, 28)).start == d(2027, 2, 28)


def test_december_rolls_into_january() -> None:
    w = window_at(15, d(2026, 12, 20))
    assert (w.start, w.end) == (d(2026, 12, 15), d(2027, 1, 15))
