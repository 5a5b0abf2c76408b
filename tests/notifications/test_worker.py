"""The mailer worker against a real SMTP server: retried until accepted, never doubled."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from modelux_server.app import create_app
from modelux_server.config import Settings
from modelux_server.errors import Conflict
from modelux_server.kit.clock import FrozenClock
from modelux_server.notifications import service
from modelux_server.notifications.mailer import MailerError, mailer_from_settings
from modelux_server.notifications.worker import BACKOFF, NotificationWorker
from modelux_server.services import Services
from tests.conftest import make_org
from tests.notifications.conftest import Smtp, body, outbox, running, worker
from tests.support.plans import move_to


async def payment_failed(rt: Services, org_id: str, invoice: str = "in_1", attempt: int = 1) -> None:
    async with rt.db.session() as session:
        await service.enqueue_payment_failed(
            session,
            rt,
            org_id,
            invoice_id=invoice,
            attempt=attempt,
            amount_due_cents=4900,
            currency="usd",
            next_attempt_at=datetime(2026, 12, 3, 9, 30, tzinfo=UTC),
        )


async def test_refused_sends_back_off_and_deliver_once(
    runtime: Services, clock: FrozenClock, smtp: Any
) -> None:
    server: Smtp = smtp(refuse_first=3)
    send = worker(runtime, server.url)
    org = await make_org(runtime)
    await payment_failed(runtime, org.id)

    for attempt, wait in enumerate(BACKOFF[:3], start=1):
        assert await send.run_once() == 1
        [row] = await outbox(runtime, org.id)
        assert (row.status, row.attempts) == ("queued", attempt)
        assert row.next_attempt_at == clock.now() + wait  # 10 s, 30 s, 2 min
        assert row.last_error is not None and "451" in row.last_error
        assert await send.run_once() == 0  # not due yet
        clock.advance(wait)

    assert await send.run_once() == 1
    [row] = await outbox(runtime, org.id)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 4, clock.now())
    assert len(server.sink.accepted) == 1
    # every attempt was the same message
    assert {m["Message-ID"] for m in server.sink.attempts} == {row.message_id}
    clock.advance(timedelta(days=1))
    assert await send.run_once() == 0
    assert len(server.sink.accepted) == 1


async def test_gives_up_visibly_and_the_operator_can_retry(
    runtime: Services, clock: FrozenClock, smtp: Any
) -> None:
    server: Smtp = smtp(refuse_first=2)
    send = worker(runtime, server.url, max_attempts=2)
    org = await make_org(runtime)
    await payment_failed(runtime, org.id)

    await send.run_once()
    clock.advance(BACKOFF[0])
    await send.run_once()
    async with runtime.db.session() as session:
        [failed] = await service.list_notifications(session, status="failed", org_id=org.id)
    assert failed.attempts == 2 and failed.last_error is not None
    assert "451" in failed.last_error and "attempt 2" in failed.last_error
    clock.advance(timedelta(hours=5))
    assert await send.run_once() == 0  # failed rows are never picked up by themselves

    async with runtime.db.session() as session:
        await service.requeue(session, runtime, failed.id)
    assert await send.run_once() == 1
    [row] = await outbox(runtime, org.id)
    assert row.status == "sent" and len(server.sink.accepted) == 1
    async with runtime.db.session() as session:
        with pytest.raises(Conflict):
            await service.requeue(session, runtime, row.id)  # a sent email is never requeued


async def test_two_processes_sending_the_same_queue_deliver_each_email_once(
    settings: Settings, clock: FrozenClock, smtp: Any
) -> None:
    server: Smtp = smtp()
    async with running(settings, clock) as one, running(settings, clock) as two:
        org = await make_org(one)
        for n in range(12):
            await payment_failed(one, org.id, invoice=f"in_{n}")
        a, b = worker(one, server.url, batch=3), worker(two, server.url, batch=3)
        while sum(await asyncio.gather(a.run_once(), b.run_once(), a.run_once(), b.run_once())):
            pass
    ids = [m["Message-ID"] for m in server.sink.accepted]
    assert len(ids) == 12 and len(set(ids)) == 12


class AcceptedThenLost:
    """The SMTP server accepts, then the answer never reaches us (a crash or a
    dropped connection between the relay's 250 and our commit)."""

    def __init__(self, url: str) -> None:
        self.inner = mailer_from_settings(url, Path("."), "billing@modelux.test")
        self.lose = True

    async def send(self, message: EmailMessage) -> None:
        await self.inner.send(message)
        if self.lose:
            self.lose = False
            raise MailerError("connection lost after DATA", transient=True)


async def test_an_unknown_outcome_is_resent_with_the_same_message_id(
    runtime: Services, clock: FrozenClock, smtp: Any
) -> None:
    server: Smtp = smtp()
    send = NotificationWorker(runtime, AcceptedThenLost(server.url))
    org = await make_org(runtime)
    await payment_failed(runtime, org.id)

    await send.run_once()
    clock.advance(BACKOFF[0])
    await send.run_once()

    # at-least-once at the SMTP boundary: the copy is recognisably the same email
    first, second = server.sink.accepted
    assert first["Message-ID"] == second["Message-ID"]
    assert [r.status for r in await outbox(runtime, org.id)] == ["sent"]


async def test_embedded_default_writes_eml_files_as_soon_as_the_change_commits(
    settings: Settings, clock: FrozenClock
) -> None:
    # no MODELUX_SMTP_URL: the worker started by the app writes to the outbox folder
    embedded = settings.model_copy(update={"workers_enabled": True, "notifications_poll_seconds": 30.0})
    application = create_app(embedded, clock=clock)
    async with application.router.lifespan_context(application):
        rt: Services = application.state.services
        org = await make_org(rt, name="Acme")
        await move_to(rt, org.id, "team", "annual")
        folder = embedded.resolved_outbox_dir
        for _ in range(100):  # woken by the commit, long before the 30 s poll
            if list(folder.glob("*.eml")):
                break
            await asyncio.sleep(0.05)

    [eml] = list(folder.glob("*.eml"))
    message = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == "[modelux] Your Acme plan changed to Team"
    assert message["To"] == org.owner_email
    text = body(message)
    assert "changed from Free to Team" in text and "yearly billing" in text
    assert "+ audit_log" in text and "+ custom_routing_rules" in text
    [row] = await outbox_after(embedded, clock, org.id)
    assert row.status == "sent" and row.message_id == message["Message-ID"]


async def outbox_after(settings: Settings, clock: FrozenClock, org_id: str) -> list[Any]:
    async with running(settings.model_copy(update={"workers_enabled": False}), clock) as rt:
        return await outbox(rt, org_id)
