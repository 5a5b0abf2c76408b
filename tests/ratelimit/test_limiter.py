"""The in-process limiter on a clock the test moves: GCRA's burst, pace and refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelux_server.errors import RateLimited
from modelux_server.kit.clock import FrozenClock
from modelux_server.ratelimit.backends.local import SWEEP_EVERY, LocalRateLimiter
from modelux_server.ratelimit.headers import duration, rate_headers, refusal
from modelux_server.ratelimit.limiter import Allowed, Refused, Verdict, micros

START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def limiter(clock: FrozenClock) -> LocalRateLimiter:
    return LocalRateLimiter(clock)


async def checks(limiter: LocalRateLimiter, key: str, per_minute: int, n: int) -> list[Verdict]:
    return [await limiter.check(key, per_minute) for _ in range(n)]


async def test_an_idle_key_gets_its_whole_minute_at_once_and_not_one_more(limiter: LocalRateLimiter) -> None:
    verdicts = await checks(limiter, "sk:a", 60, 61)
    assert all(isinstance(v, Allowed) for v in verdicts[:60])
    assert [v.remaining for v in verdicts[:60] if isinstance(v, Allowed)] == list(range(59, -1, -1))
    refused = verdicts[60]
    assert isinstance(refused, Refused)
    assert refused.retry_us == 1_000_000  # one request refills every 60 s / 60
    assert refused.retry_after_seconds == 1
    assert refused.reset_us == 60_000_000  # until the whole minute is back


async def test_after_the_burst_one_request_refills_every_period_over_limit(
    limiter: LocalRateLimiter, clock: FrozenClock
) -> None:
    await checks(limiter, "sk:a", 6, 6)  # a request every 10 s from now on
    clock.advance(timedelta(seconds=9, microseconds=999_999))
    early = await limiter.check("sk:a", 6)
    assert isinstance(early, Refused) and early.retry_us == 1
    clock.advance(timedelta(microseconds=1))
    assert isinstance(await limiter.check("sk:a", 6), Allowed)
    assert isinstance(await limiter.check("sk:a", 6), Refused)
    # a refusal takes nothing: after one more period exactly one is allowed again
    clock.advance(timedelta(seconds=10))
    assert [type(v) for v in await checks(limiter, "sk:a", 6, 2)] == [Allowed, Refused]


async def test_a_full_minute_of_quiet_gives_the_whole_burst_back(
    limiter: LocalRateLimiter, clock: FrozenClock
) -> None:
    await checks(limiter, "sk:a", 5, 5)
    clock.advance(timedelta(hours=3))
    verdicts = await checks(limiter, "sk:a", 5, 6)
    assert [type(v) for v in verdicts] == [Allowed] * 5 + [Refused]


async def test_keys_do_not_share_an_allowance(limiter: LocalRateLimiter) -> None:
    await checks(limiter, "sk:a", 2, 2)
    assert isinstance(await limiter.check("sk:a", 2), Refused)
    assert isinstance(await limiter.check("sk:b", 2), Allowed)
    assert isinstance(await limiter.check("mk:a", 2), Allowed)


async def test_a_lowered_limit_applies_at_once_and_a_raised_one_gives_no_free_burst(
    limiter: LocalRateLimiter, clock: FrozenClock
) -> None:
    await checks(limiter, "sk:a", 100, 10)  # 90 left of 100
    allowed = await limiter.check("sk:a", 5)  # the bucket is capped at 5 requests
    assert isinstance(allowed, Allowed) and allowed.remaining == 4
    await checks(limiter, "sk:a", 5, 4)
    assert isinstance(await limiter.check("sk:a", 5), Refused)
    # raised again: nothing was refilled in between, so still nothing left
    assert isinstance(await limiter.check("sk:a", 100), Refused)
    clock.advance(timedelta(seconds=3))  # 100/min refills 5 requests in 3 s
    assert [type(v) for v in await checks(limiter, "sk:a", 100, 6)] == [Allowed] * 5 + [Refused]


async def test_a_clock_that_goes_back_refills_nothing(limiter: LocalRateLimiter, clock: FrozenClock) -> None:
    await checks(limiter, "sk:a", 2, 2)
    clock.advance(timedelta(seconds=-30))  # another process's clock, behind ours
    assert isinstance(await limiter.check("sk:a", 2), Refused)
    clock.advance(timedelta(seconds=30))
    assert isinstance(await limiter.check("sk:a", 2), Refused)
    clock.advance(timedelta(seconds=30))
    assert isinstance(await limiter.check("sk:a", 2), Allowed)


async def test_full_buckets_are_forgotten_and_busy_ones_kept(
    limiter: LocalRateLimiter, clock: FrozenClock
) -> None:
    await checks(limiter, "sk:idle", 10, 3)
    clock.advance(timedelta(minutes=2))
    await checks(limiter, "sk:busy", 100_000, SWEEP_EVERY - 3)
    assert len(limiter) == 1  # the sweep ran on the last check and kept only the busy key
    # forgetting the idle key changed nothing: it has its whole minute, as a full bucket would
    assert [type(v) for v in await checks(limiter, "sk:idle", 10, 11)] == [Allowed] * 10 + [Refused]


async def test_a_limit_below_one_is_a_programming_error(limiter: LocalRateLimiter) -> None:
    with pytest.raises(ValueError):
        await limiter.check("sk:a", 0)


def test_micros_is_exact() -> None:
    assert micros(datetime(1970, 1, 1, 0, 0, 1, 7, tzinfo=UTC)) == 1_000_007
    assert micros(START + timedelta(microseconds=1)) - micros(START) == 1


def test_durations_read_like_openais() -> None:
    assert duration(0) == "0s"
    assert duration(1) == "1ms"
    assert duration(120_000) == "120ms"
    assert duration(1_000_000) == "1s"
    assert duration(1_500_000) == "1.5s"
    assert duration(59_999_000) == "59.999s"
    assert duration(60_000_000) == "1m0s"
    assert duration(61_250_000) == "1m1.25s"


def test_the_429_names_the_key_limit_and_when_to_retry() -> None:
    error = refusal(Refused(limit=60, retry_us=1_200_001, reset_us=30_000_000), "api_key")
    assert isinstance(error, RateLimited) and error.status == 429
    assert error.body()["error"]["type"] == "rate_limit_error"
    assert error.body()["error"]["code"] == "rate_limited"
    assert error.body()["error"]["limit"] == {"name": "requests_per_minute", "limit": 60, "scope": "api_key"}
    assert "not the plan's monthly" in error.body()["error"]["message"]
    assert error.headers == {
        "Retry-After": "2",  # 1.2 s, rounded up
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "30s",
    }
    assert rate_headers(Allowed(limit=600, remaining=599, reset_us=100_000)) == {
        "x-ratelimit-limit-requests": "600",
        "x-ratelimit-remaining-requests": "599",
        "x-ratelimit-reset-requests": "100ms",
    }
