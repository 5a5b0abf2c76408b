"""Threshold emails for spend budgets: one per budget, period, cap and threshold.

Rules (docs/budgets.md):

* a threshold of `pct` percent is reached when `spent >= ceil(pct% of cap)`;
  reaching one also enqueues every lower one not yet enqueued, lowest first, so
  a single expensive request that jumps past 50% and 80% sends both;
* at most once per (budget, period key, cap, threshold): the outbox's unique
  `dedupe_key` holds that across processes and restarts. A new period has a new
  key, so every threshold re-arms; so does a new cap (the emails speak of it);
* the 100% email of a `block` budget says requests are refused until the reset,
  that of an `alert` budget that they continue;
* recipients are the organization's billing email, or its owners when none is set.

The proxy calls `on_spend` off its hot path once a request's cost has settled,
so the common case (no new threshold) is arithmetic and a dict lookup: the
database is read only when this process sees a budget's percent go up.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.budget import repository
from modelux_server.budget.periods import Period
from modelux_server.models import ApiKey, Budget, PlanState, Project
from modelux_server.notifications import repository as outbox
from modelux_server.notifications import service as notifications
from modelux_server.notifications.messages import BudgetNotice
from modelux_server.services import Services

KIND = "budget_alert"
HandledKey = tuple[str, str, int]  # (budget id, period key, cap)
# how long a process trusts its memory of a budget before it looks again: a threshold
# added below the current spend by a change made in another process is sent this late
RECHECK = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class SpendObserved:
    """A budget's settled spend in a period, right after a request's cost was added."""

    budget_id: str
    org_id: str
    period: Period
    spent_micros: int
    cap_micros: int  # the cap the request was admitted under


def threshold_micros(cap_micros: int, percent: int) -> int:
    """ceil(percent% of cap) in integers: 80% of $0.000001 is the whole micro-dollar."""
    return -(-cap_micros * percent // 100)


def level(spent_micros: int, cap_micros: int) -> int:
    """The highest whole percent of the cap that `spent` has reached, 0-100.

    A threshold `pct` is reached exactly when `pct <= level` (spent >= pct% of cap).
    """
    if cap_micros <= 0:
        return 0
    return min(100, spent_micros * 100 // cap_micros)


def dedupe_key(budget_id: str, period_key: str, cap_micros: int, percent: int) -> str:
    return f"budget:{budget_id}:{period_key}:{cap_micros}:{percent}"


async def _scope_label(session: AsyncSession, budget: Budget) -> str:
    if budget.scope == "project":
        project = await session.get(Project, budget.scope_id)
        return f"project {project.name if project else budget.scope_id}"
    if budget.scope == "api_key":
        key = await session.get(ApiKey, budget.scope_id)
        return f"API key {key.name if key else budget.scope_id}"
    return "the organization"


async def enqueue_reached(
    session: AsyncSession, rt: Services, seen: SpendObserved, above: int = 0
) -> list[int]:
    """Write the emails for the budget's thresholds in (`above`, reached] not yet written.

    Runs in the caller's transaction (the caller commits); returns the percents written now.
    """
    budget = await repository.find(session, seen.budget_id)
    if budget is None or budget.org_id != seen.org_id:
        return []  # deleted since the request was admitted, or not this organization's
    reached = level(seen.spent_micros, seen.cap_micros)
    keys = {
        pct: dedupe_key(budget.id, seen.period.key, seen.cap_micros, pct)
        for pct in budget.thresholds
        if above < pct <= reached
    }
    todo = [pct for pct, key in keys.items() if not await outbox.dedupe_key_exists(session, key)]
    if not todo:
        return []
    state = await session.get(PlanState, seen.org_id)
    if state is None:
        return []
    to = await notifications.recipients(session, state)
    org_name = await notifications.org_name(session, seen.org_id)
    scope_label = await _scope_label(session, budget)
    written: list[int] = []
    for pct in todo:
        notice = BudgetNotice(
            org_name=org_name,
            org_id=seen.org_id,
            budget_name=budget.name,
            budget_id=budget.id,
            scope_label=scope_label,
            action=budget.action,
            threshold=pct,
            spent_micros=seen.spent_micros,
            cap_micros=seen.cap_micros,
            period=budget.period,
            resets_at=seen.period.end,
            budgets_url=f"{rt.public_url}/budgets",
            billing_url=notifications.billing_url(rt),
        )
        if await notifications.enqueue(
            session, rt, org_id=seen.org_id, kind=KIND, dedupe_key=keys[pct], notice=notice, to=to
        ):
            written.append(pct)
    return written


@dataclass(frozen=True, slots=True)
class Handled:
    level: int  # every threshold up to this percent is written (or was found written)
    checked_at: datetime
    period_end: datetime  # for pruning


@dataclass
class SpendAlerts:
    """One process's memory of the percents it has handled, per budget, period and cap.

    Only a cache: the unique key in the outbox is the guarantee, which is why a
    fresh process (empty memory) still sends nothing twice. A budget change made
    here (`rt.invalidate(session, budgets=True)`) clears it at once; one made in
    another process is seen within `RECHECK`.
    """

    handled: dict[HandledKey, Handled] = field(default_factory=dict)
    _prune_at: int = 4096

    def forget(self, **what: Any) -> None:
        if what.get("budgets"):
            self.handled.clear()

    async def observe(self, rt: Services, seen: SpendObserved) -> None:
        reached = level(seen.spent_micros, seen.cap_micros)
        key = (seen.budget_id, seen.period.key, seen.cap_micros)
        now = rt.clock.now()
        known = self.handled.get(key)
        if known is not None and reached <= known.level and now - known.checked_at < RECHECK:
            return
        # above what is known to be written, unless the memory is stale: then all again
        above = known.level if known is not None and now - known.checked_at < RECHECK else 0
        # claimed before the first await: concurrent settlements of this process
        # at the same percent return above instead of queueing on the database
        claim = self.handled[key] = Handled(max(reached, above), now, seen.period.end)
        try:
            async with rt.db.session() as session:
                await enqueue_reached(session, rt, seen, above=above)
        except BaseException:
            # not written: let the next settlement try again
            if self.handled.get(key) is claim:
                if known is None:
                    del self.handled[key]
                else:
                    self.handled[key] = known
            raise
        self._prune(now)

    def _prune(self, now: datetime) -> None:
        if len(self.handled) < self._prune_at:
            return
        for key, handled in list(self.handled.items()):
            if handled.period_end <= now:
                del self.handled[key]
        self._prune_at = max(4096, 2 * len(self.handled))


# One memory per runtime (a process has one; tests build several). Keyed by identity
# and dropped with the runtime, which it does not keep alive.
_memories: dict[int, SpendAlerts] = {}


def alerts_of(rt: Services) -> SpendAlerts:
    memory = _memories.get(id(rt))
    if memory is None:
        memory = _memories[id(rt)] = SpendAlerts()
        rt.add_invalidator(memory.forget)
        weakref.finalize(rt, _memories.pop, id(rt), None)
    return memory


async def on_spend(rt: Services, observed: SpendObserved) -> None:
    """Enqueue the threshold emails `observed` reaches for the first time (see the module docstring).

    For the proxy, after a request's cost settled; opens its own transaction.
    """
    if level(observed.spent_micros, observed.cap_micros) == 0:
        return
    await alerts_of(rt).observe(rt, observed)
