"""Budget spend counters: reserve a request's worst-case cost, settle it to the real one.

A blocking budget must never be overspent, however many requests run at once and
in however many processes. So a request is admitted only by *reserving* an upper
bound of its cost (proxy/budgets.py works it out) against every blocking budget it
falls under, in one atomic step: `spent + held + amount <= cap` for all of them, or
for none. When the answer ends the hold is *settled*: it is released and the real
cost is added to `spent`. Since the real cost is at most the hold, the settled
spend can never pass the cap.

Money is integer micro-dollars. The durable side is the `budget_spend` ledger,
kept the way the request counter keeps `usage_counters` (usage/ledger.py): `spent`
is written behind (every flush), and `ceiling` is raised *before* any hold or
spend goes past it. After a crash the spend restarts from the ceiling, so it can
only be too high (by at most one block), never too low.

Backends, chosen like the request counter's: in-process (one serving process, on
SQLite or PostgreSQL) and Redis (any number of processes; one Lua script per
reservation, holds that expire when the process that made them died).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from modelux_server.budget.periods import Period
from modelux_server.errors import ServiceUnavailable
from modelux_server.kit.clock import Clock
from modelux_server.kit.db import Database
from modelux_server.models import BudgetSpend

log = logging.getLogger("modelux.budget")

# a hold whose request never settled (its process died) is released after this long;
# longer than any request may run (the stream limits and upstream timeouts are shorter)
HOLD_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class Hold:
    """One budget's part of a request's reservation."""

    budget_id: str
    period: Period
    cap: int  # micro-dollars
    amount: int  # micro-dollars reserved (0 for an alert-only budget: nothing to hold)
    blocking: bool


@dataclass(frozen=True, slots=True)
class Reserved:
    holds: tuple[Hold, ...]
    token: str  # names the holds in the shared counter, for settling
    # per budget: spend plus every hold (this one included) right after reserving
    committed: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Blocked:
    hold: Hold  # the first budget that has no room
    spent: int  # its settled spend


Reservation = Reserved | Blocked


class BudgetMeter(Protocol):
    async def reserve(self, holds: tuple[Hold, ...], token: str) -> Reservation: ...

    async def settle(self, reserved: Reserved, cost: int) -> dict[str, int]:
        """Release the holds and add `cost` to every budget; returns each one's spend."""
        ...

    async def spent(self, budget_id: str, period: Period) -> int: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def ceiling_step(cap: int, needed: int, amount: int = 0) -> int:
    """How far to raise a ceiling that `needed` micro-dollars must fit under.

    A fiftieth of the cap, or sixteen times the request's hold when that is more, at a
    time: a budget's ceiling is written to the ledger about fifty times a period, and
    what a crash can add to its spend is that slack plus the holds then in flight.
    """
    return needed + max(cap // 50, 16 * amount, 1)


class SpendLedger:
    """`budget_spend` rows: written only upwards, like the request counter's ledger."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def _insert(self, budget_id: str, period: Period, spent: int, ceiling: int):  # type: ignore[no-untyped-def]
        insert = sqlite_insert if self.db.is_sqlite else pg_insert
        greatest = func.max if self.db.is_sqlite else func.greatest
        stmt = insert(BudgetSpend).values(
            budget_id=budget_id,
            window_key=period.key,
            window_start=period.start,
            spent_micros=spent,
            ceiling_micros=ceiling,
            updated_at=self.clock.now(),
        )
        return stmt, greatest

    async def load(self, budget_id: str, period: Period) -> tuple[int, int]:
        async with self.db.read_sessionmaker() as session:
            row = (
                await session.execute(
                    select(BudgetSpend.spent_micros, BudgetSpend.ceiling_micros).where(
                        BudgetSpend.budget_id == budget_id, BudgetSpend.window_key == period.key
                    )
                )
            ).first()
            await session.commit()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def raise_ceiling(self, budget_id: str, period: Period, at_least: int) -> int:
        stmt, greatest = self._insert(budget_id, period, 0, at_least)
        stmt = stmt.on_conflict_do_update(
            index_elements=["budget_id", "window_key"],
            set_={
                "ceiling_micros": greatest(BudgetSpend.ceiling_micros, stmt.excluded.ceiling_micros),
                "updated_at": stmt.excluded.updated_at,
            },
        ).returning(BudgetSpend.ceiling_micros)
        async with self.db.hot_session() as session:
            return int((await session.execute(stmt)).scalar_one())

    async def record(self, spends: list[tuple[str, Period, int]], *, settle: bool = False) -> None:
        """Store settled spend (monotonic); with `settle` the ceiling drops to it (clean stop)."""
        if not spends:
            return
        async with self.db.hot_session() as session:
            for budget_id, period, spent in spends:
                stmt, greatest = self._insert(budget_id, period, spent, spent)
                updates = {
                    "spent_micros": greatest(BudgetSpend.spent_micros, stmt.excluded.spent_micros),
                    "ceiling_micros": (
                        greatest(BudgetSpend.spent_micros, stmt.excluded.spent_micros)
                        if settle
                        else greatest(BudgetSpend.ceiling_micros, stmt.excluded.spent_micros)
                    ),
                    "updated_at": stmt.excluded.updated_at,
                }
                await session.execute(
                    stmt.on_conflict_do_update(index_elements=["budget_id", "window_key"], set_=updates)
                )


@dataclass(slots=True)
class _Live:
    spent: int
    held: int
    ceiling: int
    period: Period
    holds: dict[str, int] = field(default_factory=dict)


class LocalBudgetMeter:
    """In-process counters for one serving process: one event loop makes each check-and-hold
    atomic (no await between the check and the hold)."""

    def __init__(self, ledger: SpendLedger, *, flush_interval: float = 0.5) -> None:
        self.ledger = ledger
        self.flush_interval = flush_interval
        self._live: dict[tuple[str, str], _Live] = {}
        self._loading: dict[tuple[str, str], asyncio.Lock] = {}
        self._touched: set[tuple[str, str]] = set()
        self._flusher: asyncio.Task[None] | None = None

    async def _get(self, budget_id: str, period: Period) -> _Live:
        key = (budget_id, period.key)
        live = self._live.get(key)
        if live is not None:
            return live
        async with self._loading.setdefault(key, asyncio.Lock()):
            live = self._live.get(key)
            if live is None:
                spent, ceiling = await self.ledger.load(budget_id, period)
                # what the ceiling allowed may have been spent before a crash
                start = max(spent, ceiling)
                live = self._live[key] = _Live(start, 0, start, period)
        return live

    async def reserve(self, holds: tuple[Hold, ...], token: str) -> Reservation:
        lives = [await self._get(h.budget_id, h.period) for h in holds]
        for _ in range(64):
            short: tuple[Hold, _Live] | None = None
            for hold, live in zip(holds, lives, strict=True):
                if hold.blocking and live.spent + live.held + hold.amount > hold.cap:
                    return Blocked(hold, live.spent)
                if live.spent + live.held + hold.amount > live.ceiling and short is None:
                    short = (hold, live)
            if short is None:
                committed: dict[str, int] = {}
                for hold, live in zip(holds, lives, strict=True):
                    live.held += hold.amount
                    live.holds[token] = live.holds.get(token, 0) + hold.amount
                    committed[hold.budget_id] = live.spent + live.held
                return Reserved(holds, token, committed)
            hold, live = short
            needed = ceiling_step(hold.cap, live.spent + live.held + hold.amount, hold.amount)
            live.ceiling = max(
                live.ceiling, await self.ledger.raise_ceiling(hold.budget_id, hold.period, needed)
            )
        raise ServiceUnavailable("The budget counter is busy; try again.", code="budget_counter_contended")

    async def settle(self, reserved: Reserved, cost: int) -> dict[str, int]:
        spends: dict[str, int] = {}
        for hold in reserved.holds:
            live = await self._get(hold.budget_id, hold.period)
            live.held -= live.holds.pop(reserved.token, 0)
            live.spent += cost
            spends[hold.budget_id] = live.spent
            self._touched.add((hold.budget_id, hold.period.key))
            if live.spent > live.ceiling:  # the upstream billed past its bound (or no bound)
                live.ceiling = await self.ledger.raise_ceiling(
                    hold.budget_id, hold.period, ceiling_step(hold.cap, live.spent)
                )
        return spends

    async def spent(self, budget_id: str, period: Period) -> int:
        live = self._live.get((budget_id, period.key))
        if live is not None:
            return live.spent
        spent, _ceiling = await self.ledger.load(budget_id, period)
        return spent

    async def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - the next round retries
                log.warning("budget spend flush failed", exc_info=True)

    async def flush(self, *, settle: bool = False) -> None:
        touched, self._touched = self._touched, set()
        spends = []
        for key in touched:
            live = self._live[key]
            spends.append((key[0], live.period, live.spent))
        try:
            await self.ledger.record(spends, settle=settle)
        except Exception:
            self._touched |= touched
            raise

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        # every hold is gone with this process: the ceiling can drop to what was spent
        self._touched |= {key for key, live in self._live.items() if live.held == 0}
        await self.flush(settle=True)


# KEYS: per budget, its hash then its holds zset. ARGV[1] now (ms), ARGV[2] expiry (ms),
# ARGV[3] token, then per budget: cap, amount, blocking (1/0).
# Returns {1, committed...} held, {0, i, spent} budget i (1-based) has no room,
# {-1, i, needed} budget i's ceiling must be raised first, {-2, i} budget i not loaded.
RESERVE = """
local now, expiry, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local n = #KEYS / 2
local state = {}
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  local v = redis.call('HMGET', h, 'spent', 'held', 'ceiling')
  if not v[1] then return {-2, i} end
  local held = tonumber(v[2])
  local expired = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, member in ipairs(expired) do
    held = held - tonumber(redis.call('HGET', h, 'h:' .. member) or '0')
    redis.call('HDEL', h, 'h:' .. member)
  end
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
    redis.call('HSET', h, 'held', held)
  end
  local spent, ceiling = tonumber(v[1]), tonumber(v[3])
  local cap, amount, blocking = tonumber(ARGV[4 + 3 * (i - 1)]), tonumber(ARGV[5 + 3 * (i - 1)]),
    ARGV[6 + 3 * (i - 1)]
  if blocking == '1' and spent + held + amount > cap then return {0, i, spent} end
  if spent + held + amount > ceiling then return {-1, i, spent + held + amount} end
  state[i] = amount
end
local out = {1}
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  out[i + 1] = redis.call('HINCRBY', h, 'held', state[i]) + tonumber(redis.call('HGET', h, 'spent'))
  redis.call('HSET', h, 'h:' .. token, state[i])
  redis.call('ZADD', z, now + expiry, token)
end
return out
"""

# KEYS: per budget, hash then zset. ARGV[1] token, ARGV[2] cost. Returns each budget's
# spend and ceiling. A hold already expired (and released) is not released twice.
SETTLE = """
local token, cost = ARGV[1], tonumber(ARGV[2])
local out = {}
for i = 1, #KEYS / 2 do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  if redis.call('ZREM', z, token) == 1 then
    redis.call('HINCRBY', h, 'held', -tonumber(redis.call('HGET', h, 'h:' .. token) or '0'))
  end
  redis.call('HDEL', h, 'h:' .. token)
  out[2 * i - 1] = redis.call('HINCRBY', h, 'spent', cost)
  out[2 * i] = tonumber(redis.call('HGET', h, 'ceiling') or '0')
end
return out
"""

# KEYS[1] hash; ARGV spent=ceiling start, ttl seconds: only if no process seeded it first
SEED = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'spent', ARGV[1], 'held', 0, 'ceiling', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
"""

# KEYS[1] hash; ARGV[1] new ceiling (only ever raised)
RAISE = """
local cur = redis.call('HGET', KEYS[1], 'ceiling')
if cur and tonumber(cur) < tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'ceiling', ARGV[1]) end
return 1
"""


class RedisBudgetMeter:
    """Counters in Redis, shared by every process; the ledger in the database."""

    def __init__(
        self,
        client: object,
        ledger: SpendLedger,
        *,
        flush_interval: float = 0.5,
        hold_seconds: int = HOLD_SECONDS,
    ) -> None:
        import redis.asyncio as aioredis

        assert isinstance(client, aioredis.Redis)
        self.redis = client
        self.ledger = ledger
        self.flush_interval = flush_interval
        self.hold_ms = hold_seconds * 1000
        self._reserve = client.register_script(RESERVE)
        self._settle = client.register_script(SETTLE)
        self._seed = client.register_script(SEED)
        self._raise = client.register_script(RAISE)
        self._touched: dict[tuple[str, str], Period] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._flusher: asyncio.Task[None] | None = None

    @staticmethod
    def keys(budget_id: str, period: Period) -> tuple[str, str]:
        base = f"mlx:budget:{budget_id}:{period.key}"
        return base, base + ":holds"

    def _all_keys(self, holds: tuple[Hold, ...]) -> list[str]:
        return [k for hold in holds for k in self.keys(hold.budget_id, hold.period)]

    async def reserve(self, holds: tuple[Hold, ...], token: str) -> Reservation:
        from redis.exceptions import RedisError

        keys = self._all_keys(holds)
        args: list[str | int] = [int(time.time() * 1000), self.hold_ms, token]
        for hold in holds:
            args += [hold.cap, hold.amount, 1 if hold.blocking else 0]
        try:
            for _ in range(64):
                status, *rest = await self._reserve(keys=keys, args=args)
                if status == 1:
                    committed = {h.budget_id: int(v) for h, v in zip(holds, rest, strict=True)}
                    return Reserved(holds, token, committed)
                hold = holds[int(rest[0]) - 1]
                if status == 0:
                    return Blocked(hold, int(rest[1]))
                lock = self._locks.setdefault((hold.budget_id, hold.period.key), asyncio.Lock())
                async with lock:
                    if status == -2:
                        await self._load(hold)
                    else:
                        ceiling = await self.ledger.raise_ceiling(
                            hold.budget_id, hold.period, ceiling_step(hold.cap, int(rest[1]), hold.amount)
                        )
                        await self._raise(keys=[self.keys(hold.budget_id, hold.period)[0]], args=[ceiling])
        except RedisError as exc:
            # a budget that cannot be checked is not spent past: refuse, like the counter
            log.error("redis unreachable, refusing budgeted traffic: %s", type(exc).__name__)
            raise ServiceUnavailable(
                "The budget counter is unavailable; the request was not sent.",
                code="budget_counter_unavailable",
            ) from None
        raise ServiceUnavailable("The budget counter is busy; try again.", code="budget_counter_contended")

    async def _load(self, hold: Hold) -> None:
        spent, ceiling = await self.ledger.load(hold.budget_id, hold.period)
        start = max(spent, ceiling)
        ttl = int((hold.period.end - hold.period.start + timedelta(days=7)).total_seconds())
        await self._seed(keys=[self.keys(hold.budget_id, hold.period)[0]], args=[start, ttl])

    async def settle(self, reserved: Reserved, cost: int) -> dict[str, int]:
        keys = self._all_keys(reserved.holds)
        result = await self._settle(keys=keys, args=[reserved.token, cost])
        spends: dict[str, int] = {}
        for i, hold in enumerate(reserved.holds):
            spent, ceiling = int(result[2 * i]), int(result[2 * i + 1])
            spends[hold.budget_id] = spent
            self._touched[(hold.budget_id, hold.period.key)] = hold.period
            if spent > ceiling:
                raised = await self.ledger.raise_ceiling(
                    hold.budget_id, hold.period, ceiling_step(hold.cap, spent)
                )
                await self._raise(keys=[self.keys(hold.budget_id, hold.period)[0]], args=[raised])
        return spends

    async def spent(self, budget_id: str, period: Period) -> int:
        from redis.exceptions import RedisError

        try:
            value = await self.redis.hget(self.keys(budget_id, period)[0], "spent")
        except RedisError:
            value = None
        if value is not None:
            return int(value)
        spent, _ceiling = await self.ledger.load(budget_id, period)
        return spent

    async def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - the next round retries
                log.warning("budget spend flush failed", exc_info=True)

    async def flush(self) -> None:
        touched, self._touched = self._touched, {}
        spends = []
        for (budget_id, _), period in touched.items():
            value = await self.redis.hget(self.keys(budget_id, period)[0], "spent")
            if value is not None:
                spends.append((budget_id, period, int(value)))
        await self.ledger.record(spends)

    async def close(self) -> None:
        from redis.exceptions import RedisError

        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        try:
            await self.flush()
        except RedisError:
            log.warning("redis unreachable at shutdown; the budget ceilings stand")
