"""`modelux admin notifications`: the operator's view of the outbox."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

from typer.testing import CliRunner

from modelux_server.cli import app
from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from modelux_server.notifications.mailer import MailerError
from modelux_server.notifications.worker import NotificationWorker
from tests.conftest import make_org
from tests.notifications.conftest import outbox, running, worker
from tests.notifications.test_worker import payment_failed
from tests.support.plans import move_to


class Refusing:
    async def send(self, message: EmailMessage) -> None:
        raise MailerError("SMTP server mail.example.com:587 replied 550 mailbox unavailable", transient=False)


async def fill_outbox(settings: Settings, clock: FrozenClock) -> dict[str, str]:
    """One sent, one failed and one queued notification, over two organizations."""
    async with running(settings, clock) as rt:
        acme = await make_org(rt, name="Acme", email="owner@acme.test")
        globex = await make_org(rt, name="Globex", email="owner@globex.test")
        await move_to(rt, acme.id, "pro")
        await worker(rt, None).run_once()  # to the .eml outbox
        await payment_failed(rt, acme.id, invoice="in_1")
        await NotificationWorker(rt, Refusing(), max_attempts=1).run_once()
        await payment_failed(rt, globex.id, invoice="in_2")
        rows = await outbox(rt)
    by_status = {r.status: r.id for r in rows}
    return {"acme": acme.id, "globex": globex.id, **by_status}


def test_operator_lists_the_outbox_and_retries_a_failed_email(settings: Settings, clock: FrozenClock) -> None:
    ids = asyncio.run(fill_outbox(settings, clock))
    env = {
        "MODELUX_DATABASE_URL": settings.resolved_database_url,
        "MODELUX_DATA_DIR": str(settings.data_dir),
        "MODELUX_SECRET_KEY": "test-secret-key",
    }
    cli = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = cli.invoke(app, ["admin", "notifications", *args], env=env)
        return result.exit_code, result.output

    code, out = run()
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "CREATED", "ORG", "KIND", "STATUS", "TRIES", "WHEN", "TO", "SUBJECT"]
    assert sum(ids[s] in out for s in ("sent", "failed", "queued")) == 3
    sent_line = next(line for line in lines if ids["sent"] in line)
    assert "plan_changed" in sent_line and "sent 2026-11-28" in sent_line
    assert "[modelux] Your Acme plan changed to Pro" in sent_line
    assert "last error: attempt 1: SMTP server mail.example.com:587 replied 550" in out

    code, out = run("--status", "failed")
    assert code == 0 and ids["failed"] in out and ids["sent"] not in out and ids["queued"] not in out
    assert "gave up" in out
    code, out = run("--org", ids["globex"])
    assert code == 0 and ids["queued"] in out and ids["acme"] not in out
    assert "owner@globex.test" in out

    code, out = run("--retry", ids["failed"])
    assert code == 0 and f"{ids['failed']} requeued (payment_failed to owner@acme.test)" in out
    code, out = run("--status", "queued")
    assert ids["failed"] in out and ids["queued"] in out

    code, out = run("--retry", ids["sent"])
    assert code == 1 and "only failed ones can be retried" in out
    code, out = run("--status", "lost")
    assert code == 1 and "status must be one of queued, sent, failed" in out
    code, out = run("--status", "failed")
    assert code == 0 and out.strip() == "no notifications"
