"""Scheduled jobs that run exactly once across the fleet.

Every process that runs background work (`modelux worker`, or `serve` on a
single-process deployment) runs a `Scheduler` over the same jobs. Each job
has one row in `job_leases`; a process runs a due job only after claiming
that row with one conditional UPDATE:

    UPDATE job_leases SET holder = me, expires_at = now + lease
     WHERE name = :job AND runs = :runs_seen
       AND (expires_at IS NULL OR expires_at < now)

The statement is atomic on both databases (a row lock on PostgreSQL, the
write lock on SQLite), so when three workers race for a due job exactly one
sees `rowcount == 1`. `runs = :runs_seen` keeps a worker that read the row
before another finished the run from starting it again.

While the job runs, its holder renews the lease every third of its length.
A holder that dies (kill -9, a lost machine) stops renewing; once the lease
has passed, another worker claims the job and runs it again from the start,
since `runs` never moved. A holder that finds its lease taken (it was paused
longer than the lease) cancels its run rather than run beside the new holder.
Jobs are therefore written to be safe to repeat after a partial run, as the
billing reconcile is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import select, update

from modelux_server.kit.clock import Clock
from modelux_server.kit.db import Database, database_unavailable, insert_unless_present
from modelux_server.models import JobLease

log = logging.getLogger("modelux.jobs")

NextRun = Callable[[datetime], datetime]
"""Given when the job last finished, when it is due next."""


def daily_at(at: time) -> NextRun:
    """Due at `at` (UTC) on the first day after the last run finished."""

    def next_run(last: datetime) -> datetime:
        due = datetime.combine(last.date(), at, tzinfo=last.tzinfo)
        return due if due > last else due + timedelta(days=1)

    return next_run


def every(interval: timedelta) -> NextRun:
    return lambda last: last + interval


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[], Awaitable[object]]
    next_run: NextRun
    # how long a claim lasts without renewal: a dead worker's job waits this long
    lease: timedelta = timedelta(seconds=60)
    # after a failed run, when the job may be tried again
    retry_after: timedelta = timedelta(minutes=5)


def holder_id() -> str:
    """Names this process in the lease table (host, pid and a random part for pid reuse)."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(4)}"


class Scheduler:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        jobs: list[Job],
        *,
        holder: str | None = None,
        poll: float = 5.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.jobs = jobs
        self.holder = holder or holder_id()
        self.poll = poll
        self._running: dict[str, asyncio.Task[None]] = {}

    async def tick(self) -> list[str]:
        """Start every due job this process can claim; returns their names.

        The runs go on in the background (`wait_idle` waits for them).
        """
        started = []
        for job in self.jobs:
            if job.name in self._running:
                continue
            if await self._claim(job):
                task = asyncio.create_task(self._run(job), name=f"job-{job.name}")
                self._running[job.name] = task
                task.add_done_callback(self._forget)
                started.append(job.name)
        return started

    def _forget(self, task: asyncio.Task[None]) -> None:
        for name, running in list(self._running.items()):
            if running is task:
                del self._running[name]

    async def wait_idle(self) -> None:
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    async def run_forever(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception as exc:  # noqa: BLE001 - the database may be back next round
                if database_unavailable(exc):  # an outage: one line a round, not a traceback
                    log.warning("could not check the job schedule (database unavailable); trying again")
                else:
                    log.warning("could not check the job schedule; trying again", exc_info=True)
            await asyncio.sleep(self.poll)

    async def stop(self, grace: float) -> None:
        """Let running jobs finish for up to `grace` seconds, then cancel them.

        A cancelled job keeps its lease until it expires (another worker then
        runs it); a finished one has released it.
        """
        if not self._running:
            return
        _done, pending = await asyncio.wait(list(self._running.values()), timeout=grace)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ------------------------------------------------------------------ claims
    async def _claim(self, job: Job) -> bool:
        now = self.clock.now()
        async with self.db.session() as session:
            # the first sighting starts the schedule from now
            fresh = {"name": job.name, "runs": 0, "last_finished_at": now}
            await insert_unless_present(session, JobLease, fresh, ["name"])
            row = (
                await session.execute(
                    select(JobLease.runs, JobLease.expires_at, JobLease.last_finished_at).where(
                        JobLease.name == job.name
                    )
                )
            ).one()
        runs, expires_at, last_finished = row
        if job.next_run(last_finished) > now:
            return False
        if expires_at is not None and expires_at >= now:
            return False
        async with self.db.session() as session:
            claimed = await session.execute(
                update(JobLease)
                .where(
                    JobLease.name == job.name,
                    JobLease.runs == runs,
                    (JobLease.expires_at.is_(None)) | (JobLease.expires_at < now),
                )
                .values(holder=self.holder, expires_at=now + job.lease)
            )
        return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]

    async def _renew(self, job: Job) -> bool:
        async with self.db.session() as session:
            renewed = await session.execute(
                update(JobLease)
                .where(JobLease.name == job.name, JobLease.holder == self.holder)
                .values(expires_at=self.clock.now() + job.lease)
            )
        return bool(renewed.rowcount == 1)  # type: ignore[attr-defined]

    async def _finish(self, job: Job, error: str | None) -> None:
        """Record the outcome and release the lease, retrying through a database blip.

        Given up only after the lease would have run out anyway; then the job
        runs again elsewhere (jobs are safe to repeat), which is logged.
        """
        for attempt in range(4):
            try:
                await self._record(job, error)
                return
            except Exception:  # noqa: BLE001 - the database may be back in a moment
                if attempt == 3:
                    log.warning(
                        "could not record the end of job %s; it may run again", job.name, exc_info=True
                    )
                    return
                await asyncio.sleep(job.lease.total_seconds() / 10)

    async def _record(self, job: Job, error: str | None) -> None:
        now = self.clock.now()
        values: dict[str, object] = {"holder": None, "last_error": error}
        if error is None:
            values.update(expires_at=None, runs=JobLease.runs + 1, last_finished_at=now)
        else:
            values.update(expires_at=now + job.retry_after)
        async with self.db.session() as session:
            await session.execute(
                update(JobLease)
                .where(JobLease.name == job.name, JobLease.holder == self.holder)
                .values(**values)
            )

    # -------------------------------------------------------------------- runs
    async def _run(self, job: Job) -> None:
        work: asyncio.Task[object] = asyncio.create_task(_call(job), name=f"job-{job.name}-work")
        lost = asyncio.Event()
        keeper = asyncio.create_task(self._keep_lease(job, work, lost), name=f"job-{job.name}-lease")
        error: str | None = None
        try:
            await work
            log.info("job %s finished", job.name)
        except asyncio.CancelledError:
            if not lost.is_set():
                raise  # shutdown: the lease runs out and another worker takes the job
            # renewal was refused: the new holder owns the job now
            log.warning("job %s stopped: its lease passed to another worker", job.name)
            return
        except Exception as exc:  # noqa: BLE001 - recorded, retried after retry_after
            error = f"{type(exc).__name__}: {exc}"[:1000]
            log.exception("job %s failed; retrying in %s", job.name, job.retry_after)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        await self._finish(job, error)

    async def _keep_lease(self, job: Job, work: asyncio.Task[object], lost: asyncio.Event) -> None:
        period = job.lease.total_seconds() / 3
        while not work.done():
            await asyncio.sleep(period)
            try:
                if not await self._renew(job):
                    lost.set()
                    work.cancel()
                    return
            except Exception:  # noqa: BLE001 - a blip; the lease has two more periods
                log.warning("could not renew the lease of job %s", job.name, exc_info=True)


async def _call(job: Job) -> object:
    return await job.run()
