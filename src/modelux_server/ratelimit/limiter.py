"""The rate limiter: GCRA, in whole numbers, one atomic step per check.

GCRA (the generic cell rate algorithm) admits `limit` requests per minute,
in a burst of up to `limit` when the key was idle, and then one request
every `60 s / limit`. It keeps one pair of numbers per key, which is why it
is used here instead of a sliding-window log (one entry per request).

It is written as the equivalent bucket, in integer units so that every
backend computes exactly the same thing (Lua on the Redis server has only
doubles, exact for integers below 2**53, which these stay under):

* time is in microseconds; one request costs `PERIOD` (a minute's worth) units;
* a key's bucket holds at most `limit * PERIOD` units and refills `limit`
  units per microsecond, so it holds `limit` requests and refills them
  evenly over a minute;
* a request is allowed when the bucket holds `PERIOD` units, and takes them.

A key never seen (or expired) has a full bucket. Changing a key's limit keeps
what its bucket holds, capped at the new size, so a lowered limit applies at
once and a raised one does not hand out a free burst.

Time comes from the app's clock, not the Redis server's: tests move it, and
processes on NTP-synchronised machines disagree by milliseconds at most. A
process whose clock lags only ever sees a bucket as emptier than it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

PERIOD = 60_000_000  # microseconds in the one-minute window
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Allowed:
    limit: int
    remaining: int  # requests still allowed right now, after this one
    reset_us: int  # until the bucket is full again (what `x-ratelimit-reset-requests` tells)


@dataclass(frozen=True)
class Refused:
    limit: int
    retry_us: int  # until one request is allowed again
    reset_us: int

    @property
    def retry_after_seconds(self) -> int:
        """`Retry-After`: whole seconds, rounded up, never 0 (a client would retry at once)."""
        return max(1, math.ceil(self.retry_us / 1_000_000))


Verdict = Allowed | Refused


@dataclass(frozen=True)
class Bucket:
    level: int  # units held; PERIOD units make one request
    last_us: int  # when `level` was computed


class RateLimiter(Protocol):
    async def check(self, key: str, per_minute: int) -> Verdict:
        """Take one request from `key`'s allowance of `per_minute`, or refuse it."""
        ...

    async def close(self) -> None: ...


def micros(when: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (a float timestamp would round)."""
    return (when - _EPOCH) // _MICROSECOND


def take(bucket: Bucket | None, limit: int, now_us: int) -> tuple[Bucket, Verdict]:
    """One check: the bucket afterwards and the verdict. `backends/redis.py` runs the same in Lua."""
    if limit < 1:
        raise ValueError("a rate limit is at least 1 request per minute")
    capacity = limit * PERIOD
    level, last = (capacity, now_us) if bucket is None else (bucket.level, bucket.last_us)
    elapsed = now_us - last
    if elapsed > 0:
        # past a whole period the bucket is full whatever it held; the cap also
        # keeps `elapsed * limit` far below 2**53
        level += min(elapsed, PERIOD) * limit
        last = now_us
    # elapsed <= 0: another process's clock ran ahead; nothing refills until ours catches up
    level = min(level, capacity)
    if level >= PERIOD:
        level -= PERIOD
        verdict: Verdict = Allowed(limit, level // PERIOD, _ceil_div(capacity - level, limit))
    else:
        verdict = Refused(limit, _ceil_div(PERIOD - level, limit), _ceil_div(capacity - level, limit))
    return Bucket(level, last), verdict


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)
