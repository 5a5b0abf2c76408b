"""Real parts for the outbox tests: runtimes with the counter and the threshold
listener, and an SMTP server (aiosmtpd on loopback) that can refuse on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from sqlalchemy import select

from modelux_server.app import build_services
from modelux_server.billing.service import org_plan, request_window
from modelux_server.config import Settings
from modelux_server.errors import PlanLimitExceeded
from modelux_server.kit.clock import FrozenClock
from modelux_server.models import Notification
from modelux_server.notifications.mailer import mailer_from_settings
from modelux_server.notifications.worker import NotificationWorker, notifications_lifetime
from modelux_server.services import Services
from modelux_server.usage import service as usage
from modelux_server.usage.lifetime import counter_lifetime
from tests.notifications.test_mailer import EphemeralController

SENDER = "modelux <billing@modelux.test>"


@dataclass
class SmtpSink:
    """Accepts mail, or answers `451` to the first `refuse_first` DATA commands."""

    refuse_first: int = 0
    accepted: list[EmailMessage] = field(default_factory=list)
    attempts: list[EmailMessage] = field(default_factory=list)  # every DATA, refused or not

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        msg = BytesParser(policy=policy.default).parsebytes(content)
        assert isinstance(msg, EmailMessage)
        self.attempts.append(msg)
        if len(self.attempts) <= self.refuse_first:
            return "451 4.3.0 try again later"
        self.accepted.append(msg)
        return "250 OK"

    def kinds(self) -> list[str]:
        return sorted(str(m["X-Modelux-Notification"]) for m in self.accepted)


def body(message: EmailMessage, subtype: str = "plain") -> str:
    part = message.get_body((subtype,))
    assert part is not None
    text: str = part.get_content()  # type: ignore[attr-defined]
    return text.replace("\r\n", "\n")


@dataclass
class Smtp:
    sink: SmtpSink
    url: str


@pytest.fixture
def smtp() -> Iterator[Callable[..., Smtp]]:
    started: list[EphemeralController] = []

    def start(refuse_first: int = 0) -> Smtp:
        sink = SmtpSink(refuse_first=refuse_first)
        controller = EphemeralController(sink, hostname="127.0.0.1", port=0)
        controller.start()
        started.append(controller)
        return Smtp(sink=sink, url=f"smtp://127.0.0.1:{controller.port}?timeout=5")

    yield start
    for controller in started:
        controller.stop()


@asynccontextmanager
async def running(settings: Settings, clock: FrozenClock) -> AsyncIterator[Services]:
    """One server process, reduced to the parts under test: the request
    counter and the notifications part (threshold listener; worker only when
    `workers_enabled`)."""
    rt = build_services(settings, clock)
    try:
        async with AsyncExitStack() as stack:
            # tests run two of these against one database and share one counter between
            # them, standing in for Redis: the one-process guard would refuse the second
            await stack.enter_async_context(counter_lifetime(rt, sole=False))
            await stack.enter_async_context(notifications_lifetime(rt))
            yield rt
            await usage.drain_listeners()
    finally:
        await rt.db.dispose()


@pytest.fixture
async def runtime(settings: Settings, clock: FrozenClock) -> AsyncIterator[Services]:
    async with running(settings, clock) as rt:
        yield rt


def worker(rt: Services, smtp_url: str | None, **kwargs: Any) -> NotificationWorker:
    mailer = mailer_from_settings(smtp_url, rt.settings.resolved_outbox_dir, SENDER)
    return NotificationWorker(rt, mailer, **kwargs)


async def admit(rt: Services, org_id: str) -> bool:
    """One proxy admission through the real counter; False when the cap refused it."""
    async with rt.db.session() as session:
        current = await org_plan(session, rt, org_id)
    now = rt.clock.now()
    try:
        await usage.admit(rt, org_id, request_window(current.state, now), current.entitlements, now)
    except PlanLimitExceeded:
        return False
    return True


async def seed_usage(rt: Services, org_id: str, used: int) -> None:
    """Usage counted earlier in the window (as after a restart): written to the
    ledger the counter loads from. Call before the counter has seen the org."""
    async with rt.db.session() as session:
        current = await org_plan(session, rt, org_id)
    counter = usage.counter(rt)
    await counter.ledger.record_used(  # type: ignore[attr-defined]
        [(org_id, request_window(current.state, rt.clock.now()), used)]
    )


async def outbox(rt: Services, org_id: str | None = None) -> list[Notification]:
    async with rt.db.session() as session:
        stmt = select(Notification).order_by(Notification.created_at, Notification.id)
        if org_id is not None:
            stmt = stmt.where(Notification.org_id == org_id)
        return list((await session.execute(stmt)).scalars())
