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

Backends, chosen like the request counter's: in-process (below; one serving
process, on SQLite or PostgreSQL) and Redis (budget/redis_meter.py; any number of
processes, holds that expire when the process that made them died).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from modelux_server.budget.periods import Period
from modelux_server.errors import ServiceUnavailable
from modelux_server.kit.clock import Clock
from modelux_server.kit.db import Database
from modelux_server.models import Budget, BudgetSpend

log = logging.getLogger("modelux.budget")


# Not frozen: these are made for every budgeted request, and a frozen dataclass pays
# an object.__setattr__ per field in __init__.
@dataclass(slots=True)
class Hold:
    """One budget's part of a request's reservation."""

    budget_id: str
    period: Period
    cap: int  # micro-dollars
    amount: int  # micro-dollars reserved (0 for an alert-only budget: nothing to hold)
    blocking: bool


@dataclass(slots=True)
class Reserved:
    holds: tuple[Hold, ...]
    token: str  # names the holds in the shared counter, for settling
    # per budget: spend plus every hold (this one included) right after reserving
    committed: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Blocked:
    hold: Hold  # the first budget that has no room
    spent: int  # its settled spend


Reservation = Reserved | Blocked
# told each budget's spend (micro-dollars, by budget id) once a settlement is counted
Settled = Callable[[dict[str, int]], None]
# told a budget's spend whenever a shared counter reports it (other processes' answers too)
SpendObserver = Callable[[Hold, int], None]


class BudgetMeter(Protocol):
    observer: SpendObserver | None

    async def reserve(self, holds: tuple[Hold, ...], token: str) -> Reservation: ...

    def settle(self, reserved: Reserved, cost: int, then: Settled | None = None) -> None:
        """Release the holds and add `cost` to every budget, without waiting: the answer has
        gone out already. `then` hears each budget's spend once it is counted."""
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
        try:
            async with self.db.hot_session() as session:
                return int((await session.execute(stmt)).scalar_one())
        except IntegrityError:
            # the budget was deleted since this process cached it (another process's change
            # reaches it within the lookups' TTL): nothing left to bound
            return at_least

    async def record(self, spends: list[tuple[str, Period, int]], *, settle: bool = False) -> None:
        """Store settled spend (monotonic); with `settle` the ceiling drops to it (clean stop)."""
        if not spends:
            return
        async with self.db.hot_session() as session:
            ids = {budget_id for budget_id, _, _ in spends}
            # a budget deleted meanwhile has no ledger to write (and its row would break the
            # foreign key, and with it every other row of this write)
            live = set(await session.scalars(select(Budget.id).where(Budget.id.in_(ids))))
            for budget_id, period, spent in spends:
                if budget_id not in live:
                    continue
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

    def __init__(self, ledger: SpendLedger, *, flush_interval: float = 2.0) -> None:
        self.ledger = ledger
        self.flush_interval = flush_interval
        self._live: dict[tuple[str, str], _Live] = {}
        self._loading: dict[tuple[str, str], asyncio.Lock] = {}
        self._touched: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._flusher: asyncio.Task[None] | None = None
        self.observer: SpendObserver | None = None  # unused: `settle`'s `then` sees every cost

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
        known = self._live.get
        lives = [known((h.budget_id, h.period.key)) or await self._get(h.budget_id, h.period) for h in holds]
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

    def settle(self, reserved: Reserved, cost: int, then: Settled | None = None) -> None:
        spends: dict[str, int] = {}
        past: list[tuple[Hold, _Live]] = []
        for hold in reserved.holds:
            key = (hold.budget_id, hold.period.key)
            live = self._live[key]  # loaded by the reservation
            live.held -= live.holds.pop(reserved.token, 0)
            live.spent += cost
            spends[hold.budget_id] = live.spent
            self._touched.add(key)
            if live.spent > live.ceiling:  # the upstream billed past its bound (or no bound)
                past.append((hold, live))
        if past:
            self._background(self._raise_past(past))
        if then is not None:
            then(spends)

    async def _raise_past(self, past: list[tuple[Hold, _Live]]) -> None:
        for hold, live in past:
            needed = ceiling_step(hold.cap, live.spent)
            live.ceiling = max(
                live.ceiling, await self.ledger.raise_ceiling(hold.budget_id, hold.period, needed)
            )

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
        now = time.time()
        for key, live in list(self._live.items()):
            if live.period.end.timestamp() < now and not live.held and key not in self._touched:
                del self._live[key]  # a period over, with nothing held or left to write
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
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.flush()
        # where no request is still held, the ceiling can drop to what was spent
        self._touched = {key for key, live in self._live.items() if live.held == 0}
        await self.flush(settle=True)
