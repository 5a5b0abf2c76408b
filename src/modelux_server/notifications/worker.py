"""The mailer worker: sends queued notifications, retries failures, never doubles.

Delivery of one row is one transaction:

    claim (PostgreSQL: FOR UPDATE SKIP LOCKED) -> send -> mark sent or reschedule -> commit

The claim is the row lock (on SQLite the database write lock, which is also
why SQLite runs one worker at a time), held until the outcome is committed, so two
workers, in one process or many, can never send the same row. A process that
dies mid-send releases the lock with its connection and the row is simply
still queued.

The one gap no outbox can close is the SMTP boundary: if the relay accepts
the message and we crash (or the commit fails) before the commit, the row is
sent again. That resend carries the same Message-ID (derived from the
notification's dedupe key), so mail systems and readers can recognise it:
delivery is at-least-once at the SMTP boundary and exactly-once everywhere
before it.

On SQLite the write lock is held for the duration of one send. The embedded
default writes an .eml file (milliseconds); with a real SMTP relay on SQLite
a slow relay delays other writers by up to the SMTP timeout, one more reason
to run PostgreSQL in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from modelux_server.kit.db import database_unavailable
from modelux_server.models import Notification
from modelux_server.notifications import compose, repository
from modelux_server.notifications.mailer import Mailer, MailerError, mailer_from_settings
from modelux_server.notifications.thresholds import ThresholdWatcher
from modelux_server.services import Services

log = logging.getLogger("modelux.notifications")

# wait after the 1st, 2nd, ... failed attempt; the last value repeats
BACKOFF = (
    timedelta(seconds=10),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
)
# 8 attempts span about 3 h 45 min (the first 7 waits) before the operator has to look
MAX_ATTEMPTS = 8
_ERROR_CHARS = 1000


def backoff(attempts: int) -> timedelta:
    """The wait after `attempts` failed attempts (1-based)."""
    return BACKOFF[min(attempts, len(BACKOFF)) - 1]


class NotificationWorker:
    def __init__(
        self,
        rt: Services,
        mailer: Mailer,
        *,
        interval: float = 1.0,
        max_attempts: int = MAX_ATTEMPTS,
        batch: int = 100,
    ) -> None:
        self.rt = rt
        self.mailer = mailer
        self.interval = interval
        self.max_attempts = max_attempts
        self.batch = batch
        self.wakeup: asyncio.Event = rt.mailer_wakeup
        self._stopping = False

    async def run_once(self) -> int:
        """Attempt every due row (up to `batch`); returns the number of attempts made."""
        attempted = 0
        while attempted < self.batch:
            async with self.rt.db.session() as session:
                row = await repository.claim_next(session, self.rt.clock.now())
                if row is None:
                    break
                await self._attempt(row)
            attempted += 1
        return attempted

    async def run_forever(self) -> None:
        """Rounds until `stop()`; the round after the stop is the last one."""
        last = False
        while not last:
            last = self._stopping
            self.wakeup.clear()
            try:
                await self.run_once()
            except Exception as exc:  # noqa: BLE001 - the database may be back next round
                if database_unavailable(exc):  # an outage: one line a round, not a traceback
                    log.warning("notification worker: database unavailable; trying again")
                else:
                    log.exception("notification worker round failed")
            if not last:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), timeout=self.interval)

    def stop(self) -> None:
        """Finish with one more round (what the last requests queued goes out now), then return."""
        self._stopping = True
        self.wakeup.set()

    async def _attempt(self, row: Notification) -> None:
        row.attempts += 1
        try:
            notice = compose.from_payload(row.kind, row.payload, unseal=self.rt.encryptor.decrypt)
            message = compose.build_email(
                row.kind,
                notice,
                to=row.recipients,
                sender=self.rt.settings.email_from,
                message_id=row.message_id,
            )
            await self.mailer.send(message)
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
            self._failed(row, exc)
            return
        row.status = "sent"
        row.sent_at = self.rt.clock.now()
        row.last_error = None
        log.info("sent %s %s to %s", row.kind, row.id, ", ".join(row.recipients))

    def _failed(self, row: Notification, exc: Exception) -> None:
        # MailerError texts are written to be safe to store (no credentials)
        text = str(exc) if isinstance(exc, MailerError) else f"{type(exc).__name__}: {exc}"
        row.last_error = f"attempt {row.attempts}: {text}"[:_ERROR_CHARS]
        permanent = isinstance(exc, MailerError) and not exc.transient
        if row.attempts >= self.max_attempts:
            row.status = "failed"
            log.error("giving up on %s %s after %d attempts: %s", row.kind, row.id, row.attempts, text)
            return
        # permanent SMTP answers (bad credentials, certificate, 5xx) are retried
        # too: they are mostly configuration the operator fixes within the hours
        # the schedule spans, and then nothing is lost
        row.next_attempt_at = self.rt.clock.now() + backoff(row.attempts)
        level = logging.ERROR if permanent else logging.WARNING
        log.log(level, "sending %s %s failed (attempt %d): %s", row.kind, row.id, row.attempts, text)


@asynccontextmanager
async def notifications_lifetime(rt: Services, *, send: bool | None = None) -> AsyncIterator[None]:
    """Start-up part: the threshold listener always; the sending worker when `send`.

    `send` defaults to `workers_enabled`; the assembly passes whether this
    process runs background work. On shutdown, threshold emails still being
    written are waited for first, so none is lost between the admission that
    caused it and the exit.
    """
    from modelux_server.usage.service import drain_listeners

    watcher = ThresholdWatcher(rt)
    rt.usage_listeners.append(watcher)
    task: asyncio.Task[None] | None = None
    worker: NotificationWorker | None = None
    if rt.settings.workers_enabled if send is None else send:
        settings = rt.settings
        mailer = mailer_from_settings(settings.smtp_url, settings.resolved_outbox_dir, settings.email_from)
        worker = NotificationWorker(rt, mailer, interval=settings.notifications_poll_seconds)
        task = asyncio.create_task(worker.run_forever(), name="notifications-worker")
    try:
        yield
    finally:
        await drain_listeners()
        if task is not None and worker is not None:
            worker.stop()
            try:
                # a slow relay gets the grace; a row it was sending stays queued (worker docstring)
                await asyncio.wait_for(task, timeout=max(1.0, rt.shutdown_time_left()))
            except (TimeoutError, asyncio.CancelledError):
                pass
            except Exception:  # noqa: BLE001 - shutting down; the row stays queued
                log.exception("notification worker failed while stopping")
