"""The outbox: enqueue notifications inside the caller's transaction, and operate it.

An email is a row written in the same transaction as the state that caused
it (a plan change, a failed invoice, a crossed threshold), so it exists if
and only if that state was committed. The worker (notifications/worker.py)
sends it later. Each producer names the event with a `dedupe_key`; a second
enqueue of the same event (a webhook redelivery, another process, a
restart) is a no-op.

Recipients are resolved when the row is written: the billing email, or the
organization's owners when none is set.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing.events import PaymentFailed, PlanChanged
from modelux_server.billing.repository import get_custom_plan
from modelux_server.billing.service import org_plan
from modelux_server.errors import Conflict, NotFound, ValidationFailed
from modelux_server.kit.ids import new_id
from modelux_server.member.service import owner_emails
from modelux_server.models import Notification, Organization, PlanState
from modelux_server.models.notification import STATUSES
from modelux_server.notifications import compose, repository
from modelux_server.notifications.messages import PaymentFailedNotice, PlanChangedNotice
from modelux_server.plans.entitlements import effective_plan
from modelux_server.services import Services, after_commit

log = logging.getLogger("modelux.notifications")

NO_RECIPIENT = "no recipient: set a billing email or add an owner, then retry"
# emails addressed to one person (or to sales, or to the owners and the operator
# separately), whose recipient is never re-resolved
PERSONAL_KINDS = ("invitation", "verify_email", "sales_inquiry", "contract_ending", "invoice_overdue")


def billing_url(rt: Services) -> str:
    return f"{rt.public_url}/settings/billing"


async def recipients(session: AsyncSession, state: PlanState) -> list[str]:
    if state.billing_email:
        return [state.billing_email]
    return await owner_emails(session, state.org_id)


async def org_name(session: AsyncSession, org_id: str) -> str:
    org = await session.get(Organization, org_id)
    return org.name if org is not None else org_id


async def enqueue(
    session: AsyncSession,
    rt: Services,
    *,
    org_id: str,
    kind: str,
    dedupe_key: str,
    notice: compose.Notice,
    to: list[str],
) -> bool:
    """Write the notification unless `dedupe_key` was written before; True if written now."""
    message_id = compose.message_id_for(kind, dedupe_key, rt.public_url)
    # rendered once here for the subject (the operator's listing) and to fail
    # in the producer's tests, not at 3 a.m. in the worker
    placeholder = ["undisclosed-recipients@invalid"]
    subject = str(
        compose.build_email(
            kind, notice, to=to or placeholder, sender=rt.settings.email_from, message_id=message_id
        )["Subject"]
    )
    now = rt.clock.now()
    values: dict[str, Any] = {
        "id": new_id("ntf"),
        "org_id": org_id,
        "kind": kind,
        "dedupe_key": dedupe_key,
        "recipients": to,
        "subject": subject,
        "payload": compose.to_payload(notice, seal=rt.encryptor.encrypt),
        "message_id": message_id,
        # nobody to send to: failed at once, so the operator sees it instead of
        # a row that retries for hours
        "status": "queued" if to else "failed",
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": None if to else NO_RECIPIENT,
        "created_at": now,
        "sent_at": None,
    }
    inserted = await repository.insert_if_absent(session, values)
    if inserted:
        if not to:
            log.warning("notification %s for %s has no recipient", kind, org_id)
        wake_after_commit(session, rt)
    return inserted


def wake_after_commit(session: AsyncSession, rt: Services) -> None:
    """Wake this process's worker once the row is visible (after commit, not before)."""
    after_commit(session, rt.mailer_wakeup.set)


# -------------------------------------------------------------- billing events


async def enqueue_payment_failed(
    session: AsyncSession,
    rt: Services,
    org_id: str,
    *,
    invoice_id: str,
    attempt: int,
    amount_due_cents: int,
    currency: str,
    next_attempt_at: datetime | None,
    action_url: str | None = None,
) -> None:
    """Dunning email for one failed attempt of one invoice (Stripe redeliveries are no-ops)."""
    current = await org_plan(session, rt, org_id)
    notice = PaymentFailedNotice(
        org_name=await org_name(session, org_id),
        org_id=org_id,
        plan_name=current.entitlements.plan.name,
        amount_due_cents=amount_due_cents,
        currency=currency,
        next_attempt_at=next_attempt_at,
        billing_url=billing_url(rt),
        portal_hint="Choose “Manage billing” there to update the card in the Stripe customer portal.",
        action_url=action_url,
    )
    await enqueue(
        session,
        rt,
        org_id=org_id,
        kind="payment_failed",
        dedupe_key=f"payment_failed:{invoice_id}:{attempt}",
        notice=notice,
        to=await recipients(session, current.state),
    )


async def on_payment_failed(session: AsyncSession, rt: Services, event: PaymentFailed) -> None:
    """The payment-failed subscriber (registered in assembly.py), run in the webhook's transaction."""
    await enqueue_payment_failed(
        session,
        rt,
        event.org_id,
        invoice_id=event.invoice_id,
        attempt=event.attempt,
        amount_due_cents=event.amount_due_cents,
        currency=event.currency,
        next_attempt_at=event.next_attempt_at,
        action_url=event.action_url,
    )


async def enqueue_plan_changed(session: AsyncSession, rt: Services, event: PlanChanged) -> None:
    """Receipt for a plan change, from any source (API, dashboard, webhook, operator).

    A plan-change subscriber (registered in assembly.py): it runs in the
    change's transaction, after the organization's plan state holds the new
    plan. The previous custom plan, when there was one, names the old
    Enterprise plan and its features correctly.
    """
    current = await org_plan(session, rt, event.org_id)
    previous_custom = await get_custom_plan(session, event.from_custom_plan_id)
    before = effective_plan(rt.catalog, event.from_plan, previous_custom)
    after = current.entitlements.plan
    notice = PlanChangedNotice(
        org_name=await org_name(session, event.org_id),
        org_id=event.org_id,
        from_plan_name=before.name,
        to_plan_name=after.name,
        interval=event.to_interval,
        changed_by=event.actor,
        source=event.source,
        effective_at=event.at,
        features_removed=sorted(before.features - after.features),
        features_added=sorted(after.features - before.features),
        billing_url=billing_url(rt),
    )
    await enqueue(
        session,
        rt,
        org_id=event.org_id,
        kind="plan_changed",
        dedupe_key=f"plan_changed:{event.change_id}",
        notice=notice,
        to=await recipients(session, current.state),
    )


# ------------------------------------------------------------------- operator


async def list_notifications(
    session: AsyncSession, *, status: str | None = None, org_id: str | None = None, limit: int = 50
) -> list[Notification]:
    if status is not None and status not in STATUSES:
        raise ValidationFailed(f"status must be one of {', '.join(STATUSES)}", param="status")
    return await repository.list_recent(session, status=status, org_id=org_id, limit=limit)


async def requeue(session: AsyncSession, rt: Services, notification_id: str) -> Notification:
    """Give a failed notification a fresh set of attempts, due now.

    Only failed rows: requeueing a sent one would deliver it twice. Recipients
    are resolved again, so fixing the billing email and retrying works.
    """
    row = await repository.get(session, notification_id, lock=True)
    if row is None:
        raise NotFound(f"No notification '{notification_id}'.", code="notification_not_found")
    if row.status != "failed":
        raise Conflict(f"Notification {row.id} is {row.status}; only failed ones can be retried.")
    state = await session.get(PlanState, row.org_id)
    # a link for one person (invitation, confirmation) goes to that person only,
    # never to whoever receives the organization's billing mail
    if state is not None and row.kind not in PERSONAL_KINDS:
        row.recipients = await recipients(session, state) or row.recipients
    row.status = "queued"
    row.attempts = 0
    row.next_attempt_at = rt.clock.now()
    row.last_error = None
    wake_after_commit(session, rt)
    return row
