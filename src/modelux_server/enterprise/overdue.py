"""An Enterprise invoice past its due date: the operator is told once; the plan is kept.

An Enterprise customer pays by invoice on negotiated terms, and a late payment is a
conversation, not a card to retry: so by default (`MODELUX_ENTERPRISE_OVERDUE_ACTION=keep`)
nothing changes for the organization. The operator (`MODELUX_OPERATOR_EMAIL`) gets one
email per invoice through the outbox (dedupe key `invoice_overdue:<invoice>`, and
`overdue_notified_at` on the row), and acts.

With `downgrade`, the organization also moves to the plan its contract names for its end
(`contract.end_plan`, else the catalog's default plan), as an operator move would, and
its invoice subscription is canceled in Stripe once that move is committed.

Overdue is found by enterprise/invoicing.py: from Stripe's webhooks (`invoice.overdue`,
the subscription going `past_due`, any invoice re-read open after its due date) and by
its hourly job, which also covers invoices recorded by hand and missed webhooks.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.admin import actions
from modelux_server.admin.auth import Operator
from modelux_server.billing import repository
from modelux_server.billing.plan_changes import record_plan_change
from modelux_server.enterprise.contracts import operator_addresses
from modelux_server.enterprise.terms import Terms
from modelux_server.models import CustomPlan, EnterpriseInvoice, PlanState
from modelux_server.notifications import service as notifications
from modelux_server.notifications.invoice_messages import InvoiceOverdueNotice
from modelux_server.services import Services

log = logging.getLogger("modelux.enterprise")

KIND = "invoice_overdue"
SOURCE = "invoice_overdue"  # the plan-change record's source for a downgrade
SYSTEM = Operator("system", "system")
UNPAID = ("open", "past_due")


def dedupe_key(invoice: EnterpriseInvoice) -> str:
    return f"{KIND}:{invoice.stripe_invoice_id or invoice.id}"


async def on_overdue(
    session: AsyncSession, rt: Services, state: PlanState, invoice: EnterpriseInvoice
) -> str | None:
    """Tell the operator about one overdue invoice, once; downgrade if set to.

    The organization is locked by the caller (`state`). Returns the invoice subscription
    to cancel in Stripe after the commit when the organization was moved, else None.
    """
    if invoice.overdue_notified_at is not None:
        return None
    plan = await repository.get_custom_plan(session, invoice.custom_plan_id)
    current = await repository.get_custom_plan(session, state.custom_plan_id)
    moved_to: str | None = None
    to_cancel: str | None = None
    if rt.settings.enterprise_overdue_action == "downgrade" and _billed_by(current, invoice, plan):
        assert current is not None
        moved_to, to_cancel = await _downgrade(session, rt, state, current, invoice)
    named = plan or current
    notice = InvoiceOverdueNotice(
        org_name=await notifications.org_name(session, invoice.org_id),
        org_id=invoice.org_id,
        plan_name=named.name if named is not None else "Enterprise",
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        stripe_invoice_id=invoice.stripe_invoice_id,
        amount_cents=invoice.amount_cents,
        currency=invoice.currency,
        due_at=invoice.due_at,
        hosted_invoice_url=invoice.hosted_url,
        action="downgrade" if moved_to else "keep",
        moved_to_plan_name=moved_to,
    )
    to = operator_addresses(rt)
    if to:
        await notifications.enqueue(
            session,
            rt,
            org_id=invoice.org_id,
            kind=KIND,
            dedupe_key=dedupe_key(invoice),
            notice=notice,
            to=to,
        )
    else:
        log.warning(
            "invoice %s of %s is overdue; MODELUX_OPERATOR_EMAIL is not set, so no email was sent",
            invoice.id,
            invoice.org_id,
        )
    invoice.overdue_notified_at = rt.clock.now()
    return to_cancel


def _billed_by(current: CustomPlan | None, invoice: EnterpriseInvoice, plan: CustomPlan | None) -> bool:
    """Whether the invoice is for the Enterprise plan the organization is on now: an
    overdue invoice of a plan it already left moves nothing."""
    if current is None:
        return False
    if invoice.source == "manual":
        return True
    return plan is not None and (
        plan.id == current.id
        or (
            plan.stripe_subscription_id is not None
            and plan.stripe_subscription_id == current.stripe_subscription_id
        )
    )


async def _downgrade(
    session: AsyncSession, rt: Services, state: PlanState, current: CustomPlan, invoice: EnterpriseInvoice
) -> tuple[str, str | None]:
    """Move to the contract's end plan; (its name, the subscription to cancel)."""
    contract = Terms.load(current.terms).contract
    target = rt.catalog.get(contract.end_plan) if contract is not None else None
    target = target or rt.catalog.default_plan
    await record_plan_change(
        session, rt, state, plan_id=target.id, interval="monthly", source=SOURCE, actor=None
    )
    await actions.record(
        session,
        rt,
        SYSTEM,
        "plan.changed",
        state.org_id,
        plan={"from": current.name, "to": target.id},
        reason=KIND,
        invoice_id=invoice.id,
    )
    return target.name, current.stripe_subscription_id


async def untold(session: AsyncSession, now: datetime) -> list[EnterpriseInvoice]:
    """Invoices unpaid past their due date that the operator has not been told about."""
    rows = await session.execute(
        select(EnterpriseInvoice)
        .where(
            EnterpriseInvoice.status.in_(UNPAID),
            EnterpriseInvoice.due_at.is_not(None),
            EnterpriseInvoice.due_at <= now,
            EnterpriseInvoice.overdue_notified_at.is_(None),
        )
        .order_by(EnterpriseInvoice.due_at, EnterpriseInvoice.id)
    )
    return list(rows.scalars())


async def tell_recorded(session: AsyncSession, rt: Services, org_id: str, invoice_id: str) -> list[str]:
    """An invoice we hold no processor for (recorded by hand): told when still unpaid
    past its due date, under the organization's lock; the subscriptions to cancel."""
    state = await repository.get_plan_state(session, org_id, lock=True)
    invoice = await session.get(EnterpriseInvoice, invoice_id, populate_existing=True)
    if state is None or invoice is None or invoice.status not in UNPAID or invoice.due_at is None:
        return []
    if invoice.due_at > rt.clock.now():
        return []
    ended = await on_overdue(session, rt, state, invoice)
    return [ended] if ended else []
