"""Stripe is asked before the organization is locked, never while it is.

The organization's row is its lock (plan changes, webhooks and limited
creates serialize on it). On SQLite that lock is the database's write lock
(every transaction begins IMMEDIATE), so a Stripe call made while holding it
would stall every write in the service for as long as Stripe takes: up to
the SDK's timeout, three times over with its retries. So every path that
talks to Stripe and then changes our state does it in three steps:

1. read the organization's state and its `revision`, then end the
   transaction (`release`);
2. ask Stripe, holding nothing;
3. lock the organization; if its revision is still the one read in 1,
   apply what Stripe said. If not, something else (a webhook, another
   request) changed the state meanwhile, and Stripe's answer may be older
   than that change: go back to 1 and ask again.

Every change to a plan state bumps its revision (`apply.touch`,
`plan_changes.record_plan_change`), which is what makes step 3's check
sound: an unchanged revision means the state still reflects a Stripe read
made before ours.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing import repository
from modelux_server.errors import Conflict, NotFound
from modelux_server.models import PlanState

log = logging.getLogger("modelux.billing")

T = TypeVar("T")
R = TypeVar("R")

# A state that changes this often while we read Stripe is being fought over;
# the caller answers 409 (an API request) or 503 (a webhook, which Stripe retries).
ATTEMPTS = 4


class StateKeptChanging(Conflict):
    def __init__(self) -> None:
        super().__init__(
            "The organization's billing changed several times while Stripe was being read; try again.",
            code="billing_busy",
        )


async def release(session: AsyncSession) -> None:
    """End the session's transaction before a slow outside call; the next statement opens a new one.

    It commits: whatever the caller wrote so far is kept, and no lock
    (SQLite's write lock included) is held across the call.
    """
    await session.commit()


async def read_then_apply(
    session: AsyncSession,
    org_id: str,
    read: Callable[[PlanState], Awaitable[T]],
    apply: Callable[[PlanState, T], Awaitable[R]],
) -> R:
    """`read` Stripe (given the unlocked state), then `apply` under the lock if nothing moved.

    `read` may look at the state it is given but must not change it; `apply`
    gets the locked state and what `read` returned, and runs in the
    transaction the caller commits.
    """
    for _ in range(ATTEMPTS):
        state = await _state(session, org_id, lock=False)
        seen = state.revision
        await release(session)
        value = await read(state)
        state = await _state(session, org_id, lock=True)
        if state.revision == seen:
            return await apply(state, value)
        log.info(
            "plan state of %s moved while Stripe was read (%s -> %s); reading again",
            org_id,
            seen,
            state.revision,
        )
        await release(session)
    raise StateKeptChanging()


async def _state(session: AsyncSession, org_id: str, *, lock: bool) -> PlanState:
    if lock:
        state = await repository.get_plan_state(session, org_id, lock=True)
    else:
        # from the database, not the session's identity map, which may hold an older copy
        state = await session.get(PlanState, org_id, populate_existing=True)
    if state is None:
        raise NotFound("Organization not found.", code="organization_not_found")
    return state
