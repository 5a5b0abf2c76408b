"""The operator's email about an overdue Enterprise invoice (enterprise/overdue.py).

Only the operator reads it (`MODELUX_OPERATOR_EMAIL`): it names the organization's id,
what happened to its plan, and where to act. Built like the emails in messages.py,
from the `invoice_overdue` templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Literal

from modelux_server.notifications.messages import (
    SUBJECT_PREFIX,
    _build,
    _one_line,
    format_datetime_utc,
    format_money,
)


@dataclass(frozen=True)
class InvoiceOverdueNotice:
    org_name: str
    org_id: str
    plan_name: str  # the Enterprise plan the invoice is for
    invoice_id: str  # ours (einv_...)
    invoice_number: str | None
    stripe_invoice_id: str | None  # None for an invoice recorded by hand
    amount_cents: int
    currency: str
    due_at: datetime | None
    hosted_invoice_url: str | None
    # what modelux did: kept the plan (the operator acts), or moved the organization
    action: Literal["keep", "downgrade"]
    moved_to_plan_name: str | None  # the plan it moved to, with "downgrade"


def invoice_overdue_email(
    notice: InvoiceOverdueNotice, *, to: list[str], sender: str, message_id: str
) -> EmailMessage:
    org = _one_line(notice.org_name)
    number = _one_line(notice.invoice_number) if notice.invoice_number else notice.invoice_id
    context = {
        "org_name": notice.org_name,
        "org_id": notice.org_id,
        "plan_name": notice.plan_name,
        "invoice": number,
        "stripe_invoice_id": notice.stripe_invoice_id,
        "amount": format_money(notice.amount_cents, notice.currency),
        "due_at": format_datetime_utc(notice.due_at) if notice.due_at else "not set",
        "hosted_invoice_url": notice.hosted_invoice_url,
        "kept": notice.action == "keep",
        "moved_to": notice.moved_to_plan_name,
    }
    return _build(
        kind="invoice_overdue",
        template="invoice_overdue",
        subject=f"{SUBJECT_PREFIX} {org} ({notice.org_id}): invoice {number} is overdue",
        context=context,
        to=to,
        sender=sender,
        message_id=message_id,
        org_id=notice.org_id,
    )
