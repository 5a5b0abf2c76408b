"""The Redis limiter against a real Redis: exact across processes, the same answers as in-process."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from modelux_server.kit.clock import FrozenClock
from modelux_server.ratelimit.backends.local import LocalRateLimiter
from modelux_server.ratelimit.backends.redis import RedisRateLimiter
from modelux_server.ratelimit.limiter import Allowed, Refused
from tests.support.redis import redis_url_or_skip

START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def process(url: str, clock: FrozenClock) -> RedisRateLimiter:
    """A limiter with its own connection pool, as a separate `modelux serve` process has."""
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=50, timeout=5)
    return RedisRateLimiter(aioredis.Redis(connection_pool=pool), clock)


@pytest.fixture
def redis_url() -> str:
    return redis_url_or_skip()


@pytest.fixture
def key() -> str:
    return f"sk:key_test_{uuid.uuid4().hex}"  # Redis is shared by every test run


@pytest.fixture
async def two(redis_url: str) -> AsyncIterator[tuple[RedisRateLimiter, RedisRateLimiter]]:
    # each process its own clock, agreeing (as NTP keeps machines): a clock that moves
    # would let a slow burst earn a refill, and this test is about atomicity
    one, other = process(redis_url, FrozenClock(START)), process(redis_url, FrozenClock(START))
    yield one, other
    await one.close()
    await other.close()


async def test_two_processes_racing_admit_exactly_the_limit(
    two: tuple[RedisRateLimiter, RedisRateLimiter], key: str
) -> None:
    one, other = two
    verdicts = await asyncio.gather(
        *(one.check(key, 60) for _ in range(100)), *(other.check(key, 60) for _ in range(100))
    )
    allowed = [v for v in verdicts if isinstance(v, Allowed)]
    assert len(allowed) == 60
    assert sum(isinstance(v, Refused) for v in verdicts) == 140
    # each allowance was handed out once: the remaining counts are 59..0, no repeats
    assert sorted(v.remaining for v in allowed) == list(range(60))
    # both processes took part, so the exactness was across them
    assert any(isinstance(v, Allowed) for v in verdicts[:100])
    assert any(isinstance(v, Allowed) for v in verdicts[100:])


async def test_redis_and_in_process_give_the_same_answers_step_by_step(redis_url: str, key: str) -> None:
    clock = FrozenClock(START)
    shared, local = process(redis_url, clock), LocalRateLimiter(clock)
    rng = random.Random(14)
    kinds: set[type] = set()
    try:
        for step in range(400):
            clock.advance(
                timedelta(microseconds=rng.choice([0, 0, 0, 1, 999, 250_000, 3_000_000, 61_000_000]))
            )
            limit = rng.choice([1, 2, 7, 60, 99_991])
            want, got = await local.check(key, limit), await shared.check(key, limit)
            assert got == want, f"step {step}: limit {limit}"
            kinds.add(type(got))
    finally:
        await shared.close()
    assert kinds == {Allowed, Refused}


async def test_a_refused_request_waits_exactly_its_retry_time(redis_url: str, key: str) -> None:
    clock = FrozenClock(START)
    limiter = process(redis_url, clock)
    try:
        verdicts = [await limiter.check(key, 7) for _ in range(8)]
        refused = verdicts[-1]
        assert isinstance(refused, Refused) and refused.retry_us == 8_571_429  # 60 s / 7, rounded up
        clock.advance(timedelta(microseconds=refused.retry_us - 1))
        assert isinstance(await limiter.check(key, 7), Refused)
        clock.advance(timedelta(microseconds=1))
        assert isinstance(await limiter.check(key, 7), Allowed)
    finally:
        await limiter.close()


async def test_the_bucket_expires_once_it_would_be_full(redis_url: str, key: str) -> None:
    clock = FrozenClock(START)
    limiter = process(redis_url, clock)
    try:
        await limiter.check(key, 600)  # 0.1 s until full again
        ttl_ms = await limiter.redis.pttl(limiter.key(key))
        assert 0 < ttl_ms <= 1100
    finally:
        await limiter.close()


async def test_unreachable_redis_falls_back_to_a_per_process_allowance(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FrozenClock(START)
    limiter = process("redis://127.0.0.1:1/0", clock)
    try:
        verdicts = [await limiter.check(key, 2) for _ in range(3)]
        assert [type(v) for v in verdicts] == [Allowed, Allowed, Refused]
        clock.advance(timedelta(seconds=30))
        assert isinstance(await limiter.check(key, 2), Allowed)
    finally:
        await limiter.close()
    # one warning for the outage, not one per request
    warnings = [r for r in caplog.records if "redis unreachable" in r.getMessage()]
    assert len(warnings) == 1
