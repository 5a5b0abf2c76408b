"""Scheduled jobs run once across processes, and a dead holder's job is taken over."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from modelux_server.jobs.schedule import Job, Scheduler, daily_at, every
from modelux_server.kit.clock import FrozenClock
from modelux_server.kit.db import Database
from modelux_server.models import JobLease

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def databases(db_url: str) -> AsyncIterator[list[Database]]:
    """Three connection pools to one database: three worker processes, as far as the database can tell."""
    dbs = [Database(db_url) for _ in range(3)]
    yield dbs
    for db in dbs:
        await db.dispose()


async def lease_row(db: Database, name: str) -> JobLease:
    async with db.session() as session:
        return (await session.execute(select(JobLease).where(JobLease.name == name))).scalar_one()


def test_daily_at_is_the_next_such_time_after_the_last_run() -> None:
    at_three = daily_at(time(3, 0))
    assert at_three(datetime(2026, 1, 10, 2, 0, tzinfo=UTC)) == datetime(2026, 1, 10, 3, 0, tzinfo=UTC)
    assert at_three(datetime(2026, 1, 10, 3, 0, tzinfo=UTC)) == datetime(2026, 1, 11, 3, 0, tzinfo=UTC)
    assert at_three(datetime(2026, 1, 10, 4, 0, tzinfo=UTC)) == datetime(2026, 1, 11, 3, 0, tzinfo=UTC)


async def test_three_workers_racing_for_a_due_job_run_it_once(databases: list[Database]) -> None:
    clock = FrozenClock(START)
    runs: list[str] = []

    def job_for(worker: str) -> Job:
        async def run() -> None:
            runs.append(worker)
            await asyncio.sleep(0.05)

        return Job("hourly", run, every(timedelta(hours=1)))

    workers = [Scheduler(db, clock, [job_for(f"w{i}")], holder=f"w{i}") for i, db in enumerate(databases)]
    # the first sighting starts the schedule: nothing is due yet
    assert [await w.tick() for w in workers] == [[], [], []]

    for hour in range(1, 4):
        clock.advance(timedelta(hours=1))
        started = await asyncio.gather(*(w.tick() for w in workers))
        await asyncio.gather(*(w.wait_idle() for w in workers))
        assert sum(len(s) for s in started) == 1, started
        assert len(runs) == hour
        # finished and released: a late tick in the same hour starts nothing
        assert [await w.tick() for w in workers] == [[], [], []]

    row = await lease_row(databases[0], "hourly")
    assert row.runs == 3 and row.holder is None and row.last_finished_at == clock.now()


async def test_a_dead_holders_job_is_taken_over_after_its_lease(databases: list[Database]) -> None:
    clock = FrozenClock(START)
    finished: list[str] = []
    hang = asyncio.Event()

    async def never_finishes() -> None:
        await hang.wait()

    async def finishes() -> None:
        finished.append("b")

    daily, lease = every(timedelta(days=1)), timedelta(seconds=60)
    a = Scheduler(databases[0], clock, [Job("nightly", never_finishes, daily, lease)], holder="a")
    b = Scheduler(databases[1], clock, [Job("nightly", finishes, daily, lease)], holder="b")
    await a.tick()
    clock.advance(timedelta(days=1, seconds=1))
    assert await a.tick() == ["nightly"]
    # a dies: its run is cut off without finishing and its lease is left as it was
    await a.stop(grace=0)
    assert (await lease_row(databases[1], "nightly")).holder == "a"

    clock.advance(timedelta(seconds=59))
    assert await b.tick() == []  # the lease still holds
    clock.advance(timedelta(seconds=2))
    assert await b.tick() == ["nightly"]
    await b.wait_idle()
    assert finished == ["b"]
    row = await lease_row(databases[1], "nightly")
    assert row.runs == 1 and row.holder is None


async def test_a_failed_run_is_retried_after_its_delay_and_recorded(databases: list[Database]) -> None:
    clock = FrozenClock(START)
    attempts: list[int] = []

    async def flaky() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("provider said no")

    job = Job("flaky", flaky, every(timedelta(hours=1)), retry_after=timedelta(minutes=5))
    worker = Scheduler(databases[0], clock, [job], holder="w")
    await worker.tick()
    clock.advance(timedelta(hours=1))
    await worker.tick()
    await worker.wait_idle()
    row = await lease_row(databases[0], "flaky")
    assert row.runs == 0 and row.last_error == "RuntimeError: provider said no"

    clock.advance(timedelta(minutes=4))
    assert await worker.tick() == []
    clock.advance(timedelta(minutes=2))
    assert await worker.tick() == ["flaky"]
    await worker.wait_idle()
    row = await lease_row(databases[0], "flaky")
    assert row.runs == 1 and row.last_error is None and len(attempts) == 2


async def test_a_holder_whose_lease_was_taken_stops_its_run(databases: list[Database]) -> None:
    clock = FrozenClock(START)
    cancelled = asyncio.Event()

    async def long_run() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    job = Job("long", long_run, every(timedelta(hours=1)), lease=timedelta(seconds=0.3))
    a = Scheduler(databases[0], clock, [job], holder="a")
    await a.tick()
    clock.advance(timedelta(hours=1))
    assert await a.tick() == ["long"]
    # another worker took the row (as after a pause longer than the lease)
    async with databases[1].session() as session:
        row = (await session.execute(select(JobLease).where(JobLease.name == "long"))).scalar_one()
        row.holder = "b"
    await asyncio.wait_for(cancelled.wait(), timeout=5)
    await a.wait_idle()
    assert (await lease_row(databases[0], "long")).holder == "b"
