"""80% and 100% of the monthly request limit: one email each, per window and limit.

Rules (docs/notifications.md):

* soft nudge when `used >= ceil(80% of limit)` (the 8,000th request of
  10,000), hard cap when `used >= limit` (the last admitted request).
  Reaching a threshold also enqueues every lower one not yet enqueued, so a
  jump past both (a downgrade) still sends both, the nudge first.
* at most once per (organization, kind, window, limit): the outbox's unique
  `dedupe_key` holds that across processes and restarts.
* a new window (the renewal day) has a new key, so both re-arm.
* a plan change re-arms for the new limit, because the limit is in the key:
  an upgrade that puts usage under 80% of the new limit sends again when
  that limit is approached; a downgrade that puts usage past 80% (or 100%)
  of the new limit sends at once, from the plan change's own transaction
  (`check_org`). Going back to a limit already notified in the window does
  not send again.
* unlimited plans never notify.

The listener runs for every counted admission, off the proxy's hot path but
still once per request, so the common case is arithmetic and a set lookup;
the database is touched only the first time a process sees a threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing.events import PlanChanged
from modelux_server.billing.service import monthly_requests_used, org_plan, request_window
from modelux_server.notifications import repository, service
from modelux_server.notifications.messages import UsageNotice
from modelux_server.services import Services
from modelux_server.usage.counter import UsageObserved

SOFT_PERCENT = 80
LIMIT_NAME = "monthly_requests"

UsageKind = Literal["soft_nudge", "hard_cap"]
HandledKey = tuple[str, str, UsageKind, int]  # (org_id, window key, kind, limit)


def soft_threshold(limit: int) -> int:
    """ceil(80% of limit) in integers: 8,000 for 10,000; 1 for 1."""
    return -(-limit * SOFT_PERCENT // 100)


def reached(used: int, limit: int | None) -> list[UsageKind]:
    """The thresholds `used` has reached, lowest first."""
    if limit is None or limit <= 0:
        return []
    kinds: list[UsageKind] = []
    if used >= soft_threshold(limit):
        kinds.append("soft_nudge")
    if used >= limit:
        kinds.append("hard_cap")
    return kinds


def dedupe_key(kind: str, org_id: str, window_key: str, limit: int) -> str:
    return f"{kind}:{org_id}:{window_key}:{limit}"


async def enqueue_reached(
    session: AsyncSession, rt: Services, seen: UsageObserved, kinds: list[UsageKind]
) -> list[UsageKind]:
    """Write the emails for `kinds` unless already written; returns the kinds written now."""
    assert seen.limit is not None
    keys = {kind: dedupe_key(kind, seen.org_id, seen.window.key, seen.limit) for kind in kinds}
    todo = [kind for kind in kinds if not await repository.dedupe_key_exists(session, keys[kind])]
    if not todo:
        return []
    current = await org_plan(session, rt, seen.org_id)
    ent = current.entitlements
    upgrade = rt.catalog.cheapest_with_higher_limit(LIMIT_NAME, seen.limit)
    to = await service.recipients(session, current.state)
    name = await service.org_name(session, seen.org_id)
    written: list[UsageKind] = []
    for kind in todo:
        notice = UsageNotice(
            kind=kind,
            org_name=name,
            org_id=seen.org_id,
            limit_name=LIMIT_NAME,
            limit=seen.limit,
            used=seen.used,
            percent=seen.used * 100 // seen.limit,
            resets_at=seen.window.end,
            plan_name=ent.plan.name,
            upgrade_plan_name=None if upgrade is None else upgrade.name,
            upgrade_url=None if upgrade is None else ent.upgrade_url(upgrade.id),
            billing_url=service.billing_url(rt),
        )
        if await service.enqueue(
            session, rt, org_id=seen.org_id, kind=kind, dedupe_key=keys[kind], notice=notice, to=to
        ):
            written.append(kind)
    return written


async def check_org(session: AsyncSession, rt: Services, org_id: str) -> list[UsageKind]:
    """Evaluate an organization now, in the caller's transaction (the caller commits).

    Plan changes call it (`recheck_after_plan_change`) so a downgrade past a
    threshold emails at once: past 100% the proxy refuses every request, so
    no admission would ever report it. Returns the kinds written.
    """
    current = await org_plan(session, rt, org_id)
    limit = current.entitlements.limit(LIMIT_NAME)
    if limit is None:
        return []
    window = request_window(current.state, rt.clock.now())
    # the counter reads outside this transaction (its own read session), so
    # this is safe inside a transaction that already holds the org's lock
    used = await monthly_requests_used(rt, org_id, window)
    kinds = reached(used, limit)
    if not kinds:
        return []
    seen = UsageObserved(org_id=org_id, window=window, used=used, limit=limit)
    return await enqueue_reached(session, rt, seen, kinds)


async def recheck_after_plan_change(session: AsyncSession, rt: Services, event: PlanChanged) -> None:
    """A plan-change subscriber (registered in assembly.py): re-arm for the new limit, now."""
    await check_org(session, rt, event.org_id)


@dataclass
class ThresholdWatcher:
    """The usage listener of one process (registered in `usage_listeners`).

    `handled` remembers thresholds this process has already written or found
    written, so repeated admissions above 80% cost a set lookup. It is only
    a cache: the unique key in the database is the guarantee, which is why a
    fresh process (empty cache) still sends nothing twice.
    """

    rt: Services
    handled: dict[HandledKey, datetime] = field(default_factory=dict)  # -> window end, for pruning
    _prune_at: int = 4096

    def wants(self, seen: UsageObserved) -> bool:
        """Cheap, synchronous: is there a threshold this process has not handled?"""
        if seen.limit is None:
            return False
        return any(
            (seen.org_id, seen.window.key, kind, seen.limit) not in self.handled
            for kind in reached(seen.used, seen.limit)
        )

    async def __call__(self, seen: UsageObserved) -> None:
        if seen.limit is None:
            return
        fresh = [
            kind
            for kind in reached(seen.used, seen.limit)
            if (seen.org_id, seen.window.key, kind, seen.limit) not in self.handled
        ]
        if not fresh:
            return
        keys = [(seen.org_id, seen.window.key, kind, seen.limit) for kind in fresh]
        # claimed before the first await: concurrent admissions of this process
        # that cross the same threshold return above instead of queueing on the DB
        for key in keys:
            self.handled[key] = seen.window.end
        try:
            async with self.rt.db.session() as session:
                await enqueue_reached(session, self.rt, seen, fresh)
        except BaseException:
            # not written: let the next admission try again
            for key in keys:
                self.handled.pop(key, None)
            raise
        self._prune()

    def _prune(self) -> None:
        if len(self.handled) < self._prune_at:
            return
        now = self.rt.clock.now()
        for key, end in list(self.handled.items()):
            if end <= now:
                del self.handled[key]
        self._prune_at = max(4096, 2 * len(self.handled))
