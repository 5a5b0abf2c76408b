"""Budget counters in Redis, shared by every serving process; the ledger in the database.

Per budget and period Redis holds `spent` (settled cost), `held` (room taken out by
processes and not yet settled) and `ceiling` (the ledger's bound), plus the room
each process holds (`h:<lease>`) with an expiry in a sorted set. Every process
holds room under one *lease* per budget: it takes room from Redis in one atomic
step, spends it on requests in its own memory, and reports what the answers cost
(and gives back what it does not need) behind the requests.

Exact under concurrency, across processes: room is only ever taken while
`spent + held + room <= cap` holds, on the Redis server, for every blocking budget
of the request at once; a request is admitted only against room its process holds.

Fast far from the cap: while a budget has plenty of room left (at least
`LEASE_AHEAD` times the lease), a process takes `LEASE_REQUESTS` worst cases at a
time, so most requests touch no Redis at all. Near the cap it takes exactly what
each request needs and gives back what is left as soon as the answer settles, so
no process sits on room another one needs (at most for the report interval).

A process that dies leaves its lease in Redis until it expires (LEASE_SECONDS
without a report). The expired room is then counted as *spent*: the process may
have spent it on answers it never reported. So a crash can over-count a budget by
at most its lease, and never lets it be spent past its cap.

All operations of a moment go to Redis in one Lua script call (the lease requests
in arrival order, and the reports), one call at a time per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from modelux_server.budget.meter import (
    Blocked,
    Hold,
    Reservation,
    Reserved,
    Settled,
    SpendLedger,
    SpendObserver,
    ceiling_step,
)
from modelux_server.budget.periods import Period
from modelux_server.budget.redis_scripts import BATCH, RAISE, SEED
from modelux_server.errors import ServiceUnavailable

log = logging.getLogger("modelux.budget")

LEASE_REQUESTS = 32  # worst cases a lease takes at once, far from the cap
LEASE_AHEAD = 8  # "far": the room left is at least this many leases
LEASE_SECONDS = 30  # a lease not reported on for this long belongs to a dead process


@dataclass(slots=True)
class _Lease:
    """This process's room on one budget in one period."""

    hold: Hold  # the budget, its period, cap and action, as the latest request saw them
    left: int = 0  # room held in Redis and not yet given to a request
    running: int = 0  # room given to requests still running
    unreported: int = 0  # settled cost not yet reported
    tight: bool = False  # near the cap: give room back as soon as it is free
    used: bool = False  # a request drew on it since the last report
    loaded: bool = False  # Redis has this budget's counters (seeded from the ledger)
    spent: int = 0  # as of the last answer from Redis, for the headers
    held: int = 0
    seq: int = 0  # reports sent; Redis applies each number once
    sending: _Report | None = None  # the report in flight, or to send again after a failure


@dataclass(slots=True)
class _Grant:
    holds: tuple[Hold, ...]
    leases: list[_Lease]
    need: list[int]
    done: asyncio.Future[list[object]]


@dataclass(slots=True)
class _Report:
    lease: _Lease
    seq: int
    cost: int
    back: int
    failed: bool = False  # Redis may or may not have applied it: send the same number again


class RedisBudgetMeter:
    """See the module docstring."""

    def __init__(
        self,
        client: aioredis.Redis,
        ledger: SpendLedger,
        *,
        flush_interval: float = 0.5,
        lease_seconds: int = LEASE_SECONDS,
    ) -> None:
        self.redis = client
        self.ledger = ledger
        self.flush_interval = flush_interval
        self.lease_ms = lease_seconds * 1000
        self.name = f"L{os.getpid()}.{os.urandom(4).hex()}"  # this process's lease
        self._batch = client.register_script(BATCH)
        self._seed = client.register_script(SEED)
        self._raise = client.register_script(RAISE)
        self._leases: dict[tuple[str, str], _Lease] = {}
        self._grants: list[_Grant] = []
        self._reports: list[_Report] = []
        self._sender: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._touched: dict[tuple[str, str], Period] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._flusher: asyncio.Task[None] | None = None
        # told each budget's spend as Redis counts it (alerts), see BudgetMeter
        self.observer: SpendObserver | None = None

    @staticmethod
    def keys(budget_id: str, period: Period) -> tuple[str, str]:
        base = f"mlx:budget:{budget_id}:{period.key}"
        return base, base + ":holds"

    def _lease(self, hold: Hold) -> _Lease:
        key = (hold.budget_id, hold.period.key)
        lease = self._leases.get(key)
        if lease is None:
            lease = self._leases[key] = _Lease(hold)
        elif lease.hold.cap != hold.cap or lease.hold.blocking != hold.blocking:
            # the budget changed (a lower cap, block <-> alert): room taken under the old
            # terms goes back, and the next request asks again under the new ones
            lease.hold = hold
            self._report(lease, give_back=True)
        return lease

    # -- requests --------------------------------------------------------------------

    async def reserve(self, holds: tuple[Hold, ...], token: str) -> Reservation:
        leases = [self._lease(h) for h in holds]
        try:
            for hold, lease in zip(holds, leases, strict=True):
                if not lease.loaded:  # once per budget and period in this process
                    await self._load(hold)
                    lease.loaded = True
            for _ in range(64):
                # an alert-only budget holds no room: only blocking ones can be short
                short = [
                    (h, lease)
                    for h, lease in zip(holds, leases, strict=True)
                    if h.blocking and lease.left < h.amount
                ]
                if not short:
                    committed: dict[str, int] = {}
                    for hold, lease in zip(holds, leases, strict=True):
                        if hold.blocking:
                            lease.left -= hold.amount
                            lease.running += hold.amount
                        lease.used = True
                        committed[hold.budget_id] = lease.spent + lease.held
                    return Reserved(holds, token, committed)
                grant = self._ask(short)
                result = await grant.done
                status = result[0]
                if status == 1:
                    # credited by this waiter as it resumes, so no other request here can
                    # take the room it asked for between the answer and the check
                    self._credit(grant, result)
                    continue
                hold, lease = short[int(str(result[1])) - 1]
                if status == 0:
                    # with what this process has settled and not yet reported
                    return Blocked(hold, int(str(result[2])) + self._pending(lease))
                async with self._locks.setdefault((hold.budget_id, hold.period.key), asyncio.Lock()):
                    if status == -2:
                        await self._load(hold)
                    else:
                        await self._extend(hold, ceiling_step(hold.cap, int(str(result[2])), hold.amount))
        except RedisError as exc:
            # a budget that cannot be checked is not spent past: refuse, like the counter
            log.error("redis unreachable, refusing budgeted traffic: %s", type(exc).__name__)
            raise ServiceUnavailable(
                "The budget counter is unavailable; the request was not sent.",
                code="budget_counter_unavailable",
            ) from None
        raise ServiceUnavailable("The budget counter is busy; try again.", code="budget_counter_contended")

    def settle(self, reserved: Reserved, cost: int, then: Settled | None = None) -> None:
        spends: dict[str, int] = {}
        for hold in reserved.holds:
            lease = self._leases.get((hold.budget_id, hold.period.key)) or self._lease(hold)
            if hold.blocking:
                lease.running -= hold.amount
                lease.left += hold.amount - cost
            lease.unreported += cost
            lease.spent += cost
            spends[hold.budget_id] = lease.spent
            if lease.tight:
                self._report(lease)
        if then is not None:
            then(spends)

    async def spent(self, budget_id: str, period: Period) -> int:
        """Settled spend, with what this process has yet to report."""
        if self._sender is not None and not self._sender.done():
            await asyncio.shield(self._sender)  # a report on its way may be counted already
        mine = self._leases.get((budget_id, period.key))
        pending = self._pending(mine) if mine is not None else 0
        try:
            value = await self.redis.hget(self.keys(budget_id, period)[0], "spent")
        except RedisError:
            value = None
        if value is not None:
            return int(value) + pending
        spent, _ceiling = await self.ledger.load(budget_id, period)
        return spent + pending

    @staticmethod
    def _pending(lease: _Lease) -> int:
        """Cost settled here that Redis may not count yet."""
        return lease.unreported + (lease.sending.cost if lease.sending is not None else 0)

    # -- Redis -----------------------------------------------------------------------

    def _ask(self, short: list[tuple[Hold, _Lease]]) -> _Grant:
        done: asyncio.Future[list[object]] = asyncio.get_running_loop().create_future()
        need = [h.amount - lease.left for h, lease in short]
        grant = _Grant(tuple(h for h, _ in short), [lease for _, lease in short], need, done)
        self._grants.append(grant)
        self._kick()
        return grant

    @staticmethod
    def _credit(grant: _Grant, result: list[object]) -> None:
        took, states = result[1], result[2]
        assert isinstance(took, list) and isinstance(states, list)
        for hold, lease, given, (spent, held) in zip(grant.holds, grant.leases, took, states, strict=True):
            lease.left += int(given)
            lease.tight = int(given) < hold.amount * LEASE_REQUESTS
            lease.spent, lease.held = int(spent), int(held)

    def _report(self, lease: _Lease, *, give_back: bool = True) -> None:
        """Hand what the lease's answers cost (and room it does not need) to Redis; with
        nothing to hand over it still renews the lease while requests run on it."""
        if lease.sending is not None:
            return  # one report in flight per lease: the next takes what came since
        cost, back = lease.unreported, max(0, lease.left) if give_back else 0
        lease.unreported -= cost
        lease.left -= back
        lease.seq += 1
        lease.sending = _Report(lease, lease.seq, cost, back)
        self._send_report(lease.sending)

    def _send_report(self, report: _Report) -> None:
        report.failed = False
        self._reports.append(report)
        self._kick()

    def _reported(self, report: _Report, answer: list[object]) -> None:
        lease = report.lease
        lease.sending = None
        spent, held, ceiling, lost = (int(str(v)) for v in answer)
        lease.spent, lease.held = spent + lease.unreported, held
        if self.observer is not None:
            self.observer(lease.hold, spent)  # thresholds crossed by any process's answers
        if lost:
            # expired (this process stalled past LEASE_SECONDS): Redis counted all of it as
            # spent, so the room this process still thought it held is gone
            lease.left = min(lease.left, 0)
        hold = lease.hold
        self._touched[(hold.budget_id, hold.period.key)] = hold.period
        if spent > ceiling:  # answers cost more than their bound
            self._background(self._extend(hold, ceiling_step(hold.cap, spent)))
        if lease.tight and (lease.left or lease.unreported):
            self._report(lease)  # what settled while this report was out

    def _kick(self) -> None:
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send())

    async def _send(self) -> None:
        while self._grants or self._reports:
            grants, self._grants = self._grants, []
            reports, self._reports = self._reports, []
            try:
                answer = await self._run(grants, reports)
            except Exception as exc:  # noqa: BLE001 - every waiter hears of it
                log.warning("budget counter call failed: %s", type(exc).__name__)
                for grant in grants:
                    if not grant.done.done():
                        grant.done.set_exception(exc)
                for report in reports:
                    # the same numbered report goes again next round; Redis applies it once
                    report.failed = True
                continue
            for grant, result in zip(grants, answer["g"], strict=True):
                if not grant.done.done():
                    grant.done.set_result(result)
                elif result[0] == 1:
                    self._credit(grant, result)  # its waiter is gone: the room stays usable
            for report, result in zip(reports, answer["p"], strict=True):
                self._reported(report, result)

    async def _run(self, grants: list[_Grant], reports: list[_Report]) -> dict[str, list[list[object]]]:
        slots: dict[tuple[str, str], int] = {}
        keys: list[str] = []

        def slot(hold: Hold) -> int:
            name = (hold.budget_id, hold.period.key)
            if name not in slots:
                keys.extend(self.keys(hold.budget_id, hold.period))
                slots[name] = len(slots) + 1
            return slots[name]

        batch = {
            "g": [
                [[slot(h), n, h.amount * LEASE_REQUESTS, h.cap] for h, n in zip(g.holds, g.need, strict=True)]
                for g in grants
            ],
            "p": [
                [slot(r.lease.hold), r.seq, r.cost, r.back, 1 if r.lease.hold.blocking else 0]
                for r in reports
            ],
        }
        raw = await self._batch(
            keys=keys,
            args=[self.lease_ms, self.name, json.dumps(batch, separators=(",", ":")), LEASE_AHEAD],
        )
        answer: dict[str, list[list[object]]] = json.loads(raw)
        # cjson encodes an empty Lua table as an object
        return {"g": answer["g"] or [], "p": answer["p"] or []}

    async def _load(self, hold: Hold) -> None:
        spent, ceiling = await self.ledger.load(hold.budget_id, hold.period)
        start = max(spent, ceiling)  # what the ceiling allowed may have been spent before
        ttl = int((hold.period.end - hold.period.start + timedelta(days=7)).total_seconds())
        await self._seed(keys=[self.keys(hold.budget_id, hold.period)[0]], args=[start, ttl])

    async def _extend(self, hold: Hold, needed: int) -> None:
        ceiling = await self.ledger.raise_ceiling(hold.budget_id, hold.period, needed)
        await self._raise(keys=[self.keys(hold.budget_id, hold.period)[0]], args=[ceiling])

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the ledger ----------------------------------------------------------------------

    async def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        rounds = 0
        while True:
            await asyncio.sleep(self.flush_interval)
            rounds += 1
            try:
                # leases are reported every round; the ledger, which only a Redis that lost
                # its data reads, is written every fourth (like the request counter's 2 s)
                await self.flush(record=rounds % 4 == 0)
            except Exception:  # noqa: BLE001 - the next round retries
                log.warning("budget spend flush failed", exc_info=True)

    def _report_all(self, *, everything: bool = False) -> None:
        """Every round: resend a report that failed, report every lease with news, renew the
        ones requests still run on, and give back the room of the idle ones."""
        for key, lease in list(self._leases.items()):
            if lease.sending is not None:
                if lease.sending.failed:
                    self._send_report(lease.sending)  # the same number again
                continue
            idle = not lease.used
            lease.used = False
            if lease.unreported or lease.left or lease.running or everything:
                self._report(lease, give_back=idle or everything or lease.tight)
            elif idle and lease.hold.period.end.timestamp() < time.time():
                del self._leases[key]  # a past period with nothing left to say

    async def flush(self, *, everything: bool = False, record: bool = True) -> None:
        """Report every lease, then write the settled spend Redis holds to the ledger."""
        self._report_all(everything=everything)
        if self._sender is not None and not self._sender.done():
            await asyncio.shield(self._sender)
        if not record:
            return
        touched, self._touched = self._touched, {}
        spends = []
        for (budget_id, _), period in touched.items():
            value = await self.redis.hget(self.keys(budget_id, period)[0], "spent")
            if value is not None:
                spends.append((budget_id, period, int(value)))
        await self.ledger.record(spends)

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        try:
            await self.flush(everything=True)  # hand back every lease: nothing is in flight now
        except RedisError:
            log.warning("redis unreachable at shutdown; unreported leases expire as spent")
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
