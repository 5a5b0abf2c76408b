"""Payment-failed and plan-changed emails: enqueued in the caller's transaction, sent once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from modelux_server.billing.operator import create_enterprise_plan
from modelux_server.models import PlanState
from modelux_server.notifications import service
from modelux_server.services import Services
from tests.conftest import make_org
from tests.notifications.conftest import Smtp, body, outbox, worker
from tests.support.plans import move_to


async def fail_invoice(rt: Services, org_id: str, invoice: str, attempt: int, *, retry: bool = True) -> None:
    async with rt.db.session() as session:
        await service.enqueue_payment_failed(
            session,
            rt,
            org_id,
            invoice_id=invoice,
            attempt=attempt,
            amount_due_cents=19_900,
            currency="usd",
            next_attempt_at=datetime(2026, 12, 3, 9, 30, tzinfo=UTC) if retry else None,
        )


async def test_payment_failed_once_per_invoice_attempt(runtime: Services, smtp: Any) -> None:
    server: Smtp = smtp()
    org = await make_org(runtime, name="Acme")
    await move_to(runtime, org.id, "team")
    async with runtime.db.session() as session:
        state = await session.get(PlanState, org.id)
        assert state is not None
        state.billing_email = "ap@acme.test"

    await fail_invoice(runtime, org.id, "in_123", 1)
    await fail_invoice(runtime, org.id, "in_123", 1)  # Stripe redelivered the event
    await fail_invoice(runtime, org.id, "in_123", 2, retry=False)  # Stripe's next attempt failed too
    await worker(runtime, server.url).run_once()

    rows = [r for r in await outbox(runtime, org.id) if r.kind == "payment_failed"]
    assert sorted(r.dedupe_key for r in rows) == ["payment_failed:in_123:1", "payment_failed:in_123:2"]
    mails = [m for m in server.sink.accepted if m["X-Modelux-Notification"] == "payment_failed"]
    assert len(mails) == 2
    for mail in mails:
        assert mail["To"] == "ap@acme.test"
        assert mail["Subject"] == "[modelux] Payment failed for Acme"
        text = body(mail)
        assert "We could not collect $199.00 for the Team plan." in text
        assert "https://modelux.test/settings/billing" in text
    texts = sorted(body(m) for m in mails)
    assert sum("We will try again on December 3, 2026 09:30 UTC" in t for t in texts) == 1
    assert sum("No further automatic attempts are scheduled" in t for t in texts) == 1


async def test_a_rolled_back_transaction_sends_nothing(runtime: Services, smtp: Any) -> None:
    server: Smtp = smtp()
    org = await make_org(runtime)
    with pytest.raises(RuntimeError):
        async with runtime.db.session() as session:
            await service.enqueue_payment_failed(
                session,
                runtime,
                org.id,
                invoice_id="in_9",
                attempt=1,
                amount_due_cents=4900,
                currency="usd",
                next_attempt_at=None,
            )
            raise RuntimeError("the webhook handler failed after enqueueing")
    assert await worker(runtime, server.url).run_once() == 0
    assert await outbox(runtime, org.id) == []


async def test_every_plan_change_is_receipted_once(runtime: Services, smtp: Any) -> None:
    server: Smtp = smtp()
    org = await make_org(runtime, name="Acme")
    await move_to(runtime, org.id, "pro")
    await move_to(runtime, org.id, "pro")  # no change, no email
    await move_to(runtime, org.id, "free")
    async with runtime.db.session() as session:
        await create_enterprise_plan(
            session, runtime, org.id, name="Acme Enterprise", limits={}, features=["sso"], actor="ops@modelux"
        )
    await worker(runtime, server.url).run_once()

    mails = {str(m["Subject"]): body(m) for m in server.sink.accepted}
    assert sorted(mails) == [
        "[modelux] Your Acme plan changed to Acme Enterprise",
        "[modelux] Your Acme plan changed to Free",
        "[modelux] Your Acme plan changed to Pro",
    ]
    upgrade = mails["[modelux] Your Acme plan changed to Pro"]
    assert "changed from Free to Pro" in upgrade and "monthly billing" in upgrade
    assert "Changed by: test (via operator)" in upgrade
    assert "Now included:\n  + ensembles" in upgrade
    downgrade = mails["[modelux] Your Acme plan changed to Free"]
    assert "No longer included:\n  - ensembles" in downgrade
    enterprise = mails["[modelux] Your Acme plan changed to Acme Enterprise"]
    assert "Changed by: ops@modelux" in enterprise and "+ sso" in enterprise
    assert all(m["To"] == org.owner_email for m in server.sink.accepted)


async def test_concurrent_redeliveries_write_one_row_without_failing(runtime: Services) -> None:
    # e.g. the same Stripe event handled by two processes at once: the second
    # insert must be a quiet no-op, not an error that rolls back its handler
    org = await make_org(runtime)
    await asyncio.gather(*(fail_invoice(runtime, org.id, "in_7", 1) for _ in range(10)))
    assert [r.dedupe_key for r in await outbox(runtime, org.id)] == ["payment_failed:in_7:1"]
