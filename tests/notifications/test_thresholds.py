"""80% / 100% emails: one each per window and limit, whatever the concurrency."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from modelux_server.billing.service import org_plan, request_window
from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from modelux_server.models import PlanState
from modelux_server.notifications.thresholds import (
    ThresholdWatcher,
    check_org,
    reached,
    soft_threshold,
)
from modelux_server.services import Services
from modelux_server.usage import service as usage
from modelux_server.usage.counter import UsageObserved
from tests.conftest import make_org
from tests.notifications.conftest import Smtp, admit, body, outbox, running, seed_usage, worker
from tests.support.plans import move_to

TINY_CATALOG = """
[plans.free]
name = "Free"
self_serve = true
monthly_price_cents = 0
features = []
[plans.free.limits]
monthly_requests = 250
projects = 1
api_keys = 3
provider_credentials = 2

[plans.pro]
name = "Pro"
order = 1
self_serve = true
monthly_price_cents = 4900
features = ["ensembles"]
[plans.pro.limits]
monthly_requests = 2500
projects = 5
api_keys = 25
provider_credentials = 10
"""


def test_thresholds_are_80_percent_rounded_up_and_the_limit() -> None:
    assert soft_threshold(10_000) == 8_000
    assert soft_threshold(250) == 200
    assert soft_threshold(7) == 6  # 5.6 -> the 6th request
    assert reached(7_999, 10_000) == []
    assert reached(8_000, 10_000) == ["soft_nudge"]
    assert reached(10_000, 10_000) == ["soft_nudge", "hard_cap"]
    assert reached(10**9, None) == []


async def _window(rt: Services, org_id: str) -> Any:
    async with rt.db.session() as session:
        return request_window((await org_plan(session, rt, org_id)).state, rt.clock.now())


async def test_200_concurrent_admissions_in_two_processes_send_one_nudge_and_one_cap(
    settings: Settings, clock: FrozenClock, tmp_path: Path, smtp: Any
) -> None:
    catalog = tmp_path / "plans.toml"
    catalog.write_text(TINY_CATALOG)
    tiny = settings.model_copy(update={"plan_catalog": catalog})
    server: Smtp = smtp()

    async with running(tiny, clock) as one, running(tiny, clock) as two:
        # one counter shared by both processes, as Redis is in production; each
        # process has its own threshold listener (and its own in-memory cache)
        two.counter = one.counter
        org = await make_org(one)
        await seed_usage(one, org.id, 198)  # 79.2% of 250 used earlier this window

        results = await asyncio.gather(*(admit((one, two)[i % 2], org.id) for i in range(200)))
        await usage.drain_listeners()
        assert results.count(True) == 52  # exact cap: 198 + 52 = 250, the rest got the 402

        rows = await outbox(one, org.id)
        assert sorted(r.kind for r in rows) == ["hard_cap", "soft_nudge"]
        soft = next(r for r in rows if r.kind == "soft_nudge")
        assert soft.payload["limit"] == 250 and 200 <= soft.payload["used"] < 250

        # both processes' workers race for the rows; each row is sent once
        sent = await asyncio.gather(worker(one, server.url).run_once(), worker(two, server.url).run_once())
        assert sum(sent) == 2
        assert server.sink.kinds() == ["hard_cap", "soft_nudge"]
        window = await _window(one, org.id)

    # a restart: fresh processes with empty caches replay the crossings
    async with running(tiny, clock) as again:
        listener: ThresholdWatcher = watcher_of(again)
        replay = [UsageObserved(org.id, window, used, 250) for used in (200, 249, 250, 250, 200)]
        await asyncio.gather(*(listener(seen) for seen in replay))
        async with again.db.session() as session:
            assert await check_org(session, again, org.id) == []
        assert await admit(again, org.id) is False  # still capped after the restart
        assert await worker(again, server.url).run_once() == 0
        assert len(await outbox(again, org.id)) == 2
        assert len(server.sink.accepted) == 2

        # renewal day: a new window, both thresholds armed again
        clock.set(window.end + timedelta(hours=1))
        results = await asyncio.gather(*(admit(again, org.id) for _ in range(260)))
        await usage.drain_listeners()
        assert results.count(True) == 250
        await worker(again, server.url).run_once()
        assert server.sink.kinds() == ["hard_cap", "hard_cap", "soft_nudge", "soft_nudge"]
        renewed = [r for r in await outbox(again, org.id) if window.key not in r.dedupe_key]
        assert sorted(r.kind for r in renewed) == ["hard_cap", "soft_nudge"]


async def test_nudge_at_the_8000th_request_and_cap_at_the_last(runtime: Services, smtp: Any) -> None:
    server: Smtp = smtp()
    org = await make_org(runtime, name="Acme Robotics")
    await seed_usage(runtime, org.id, 7_998)

    assert await admit(runtime, org.id)  # 7,999th
    await usage.drain_listeners()
    assert await outbox(runtime, org.id) == []

    assert await admit(runtime, org.id)  # 8,000th
    await usage.drain_listeners()
    assert [r.kind for r in await outbox(runtime, org.id)] == ["soft_nudge"]

    # the billing email, once set, is where usage emails go
    async with runtime.db.session() as session:
        state = await session.get(PlanState, org.id)
        assert state is not None
        state.billing_email = "billing@acme.test"
    window = await _window(runtime, org.id)
    await watcher_of(runtime)(UsageObserved(org.id, window, 10_000, 10_000))
    assert await worker(runtime, server.url).run_once() == 2

    soft, hard = sorted(server.sink.accepted, key=lambda m: str(m["X-Modelux-Notification"]), reverse=True)
    assert soft["To"] == org.owner_email
    assert soft["Subject"] == "[modelux] Acme Robotics has used 80% of its monthly requests"
    text = body(soft)
    assert "8,000 of 10,000 monthly requests (80%)" in text
    assert "Plan:    Free" in text
    assert "December 28, 2026 00:00 UTC" in text  # window.end: the renewal day
    assert "Upgrading to Pro lifts this limit:\nhttps://modelux.test/settings/billing?plan=pro" in text
    assert "https://modelux.test/settings/billing\n" in text

    assert hard["To"] == "billing@acme.test"
    assert hard["Subject"] == "[modelux] Acme Robotics has reached its monthly request limit"
    text = body(hard)
    assert "10,000 of 10,000 monthly requests (100%)" in text
    assert "blocked with HTTP 402" in text and "December 28, 2026 00:00 UTC" in text
    html = body(hard, "html")
    assert "https://modelux.test/settings/billing?plan=pro" in html


async def test_listener_stays_off_the_database_until_a_threshold_is_new(runtime: Services) -> None:
    org = await make_org(runtime)
    window = await _window(runtime, org.id)
    listener: ThresholdWatcher = watcher_of(runtime)
    statements: list[str] = []
    engine = runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))

    await asyncio.gather(*(listener(UsageObserved(org.id, window, n, 10_000)) for n in range(1, 8_000)))
    await listener(UsageObserved(org.id, window, 5, None))  # unlimited plans never notify
    assert statements == []

    await listener(UsageObserved(org.id, window, 8_000, 10_000))
    assert statements  # the first crossing writes the row
    statements.clear()
    await asyncio.gather(*(listener(UsageObserved(org.id, window, n, 10_000)) for n in range(8_001, 9_999)))
    assert statements == []


async def test_plan_changes_rearm_for_the_new_limit(runtime: Services, smtp: Any) -> None:
    server: Smtp = smtp()
    send = worker(runtime, server.url)
    org = await make_org(runtime)
    await seed_usage(runtime, org.id, 8_999)
    assert await admit(runtime, org.id)  # 9,000 of Free's 10,000: nudged
    await usage.drain_listeners()

    await move_to(runtime, org.id, "pro")  # 9,000 of 250,000: under 80%, nothing
    await send.run_once()
    assert await admit(runtime, org.id)
    await usage.drain_listeners()
    await move_to(runtime, org.id, "free")  # back to a limit already nudged this window
    await send.run_once()
    kinds = sorted(r.kind for r in await outbox(runtime, org.id))
    assert kinds == ["plan_changed", "plan_changed", "soft_nudge"]

    # an upgrade re-arms: approaching the higher limit nudges again
    await move_to(runtime, org.id, "pro")
    window = await _window(runtime, org.id)
    await watcher_of(runtime)(UsageObserved(org.id, window, 200_000, 250_000))
    rows = [r for r in await outbox(runtime, org.id) if r.kind == "soft_nudge"]
    assert sorted(r.payload["limit"] for r in rows) == [10_000, 250_000]


@pytest.mark.parametrize(
    ("used", "expected"), [(9_000, ["soft_nudge"]), (12_000, ["soft_nudge", "hard_cap"])]
)
async def test_a_downgrade_past_the_thresholds_emails_without_waiting_for_traffic(
    runtime: Services, smtp: Any, used: int, expected: list[str]
) -> None:
    server: Smtp = smtp()
    org = await make_org(runtime)
    await seed_usage(runtime, org.id, used)
    await move_to(runtime, org.id, "pro")  # far under 80% of 250,000

    await move_to(runtime, org.id, "free")  # 10,000 now: checked in the plan change
    await worker(runtime, server.url).run_once()

    usage_rows = [r for r in await outbox(runtime, org.id) if r.kind in ("soft_nudge", "hard_cap")]
    assert sorted(r.kind for r in usage_rows) == sorted(expected)
    assert all(r.payload["used"] == used and r.payload["limit"] == 10_000 for r in usage_rows)
    assert sorted(server.sink.kinds()) == sorted(["plan_changed", "plan_changed", *expected])


def watcher_of(services: Services) -> ThresholdWatcher:
    [watcher] = [w for w in services.usage_listeners if isinstance(w, ThresholdWatcher)]
    return watcher
