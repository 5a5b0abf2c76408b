"""What a process that runs background work starts, and the jobs it schedules.

The jobs are listed in `scheduled_jobs`: adding a job (a purge, an export, a
reminder) is one entry there. The email outbox is not a scheduled job: its
rows are claimed one by one (notifications/worker.py), which already holds
across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from modelux_server.jobs.schedule import Job, Scheduler, daily_at, every
from modelux_server.services import Services


def scheduled_jobs(rt: Services) -> list[Job]:
    jobs: list[Job] = []
    if rt.settings.billing_mode == "stripe":
        from modelux_server.billing.stripe.reconcile import RUN_AT, nightly

        # a run over every customer can take minutes; the lease is renewed meanwhile
        jobs.append(Job("billing-reconcile", lambda: nightly(rt), daily_at(RUN_AT)))
    from modelux_server.enterprise import contracts

    # hourly, so a contract ends within the hour after midnight UTC of its end date
    jobs.append(Job("enterprise-contracts", lambda: contracts.run(rt), every(contracts.RUN_EVERY)))
    from modelux_server.enterprise import invoice_sync

    # hourly: an overdue invoice whose webhook was missed is still told, and Stripe work
    # an operator's save could not finish is retried
    jobs.append(Job("enterprise-invoices", lambda: invoice_sync.run(rt), every(invoice_sync.RUN_EVERY)))
    return jobs


@asynccontextmanager
async def scheduler_lifetime(rt: Services, jobs: list[Job] | None = None) -> AsyncIterator[Scheduler]:
    scheduler = Scheduler(rt.db, rt.clock, scheduled_jobs(rt) if jobs is None else jobs)
    task = asyncio.create_task(scheduler.run_forever(), name="job-scheduler")
    try:
        yield scheduler
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await scheduler.stop(rt.shutdown_time_left())
