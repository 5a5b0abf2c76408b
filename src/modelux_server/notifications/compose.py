"""Between an outbox row and an email: notices stored as JSON, rebuilt at send time.

The row keeps the notice (not the rendered message) so the operator sees the
facts that were sent, and a retry renders the same content with the same
Message-ID. The one exception is a link that grants something (an invitation,
an email confirmation): it is sealed with the runtime's encryption key, so the
table, its backups and the operator's listing never hold a usable link.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from modelux_server.notifications.contract_messages import ContractEndingNotice, contract_ending_email
from modelux_server.notifications.invoice_messages import InvoiceOverdueNotice, invoice_overdue_email
from modelux_server.notifications.messages import (
    BudgetNotice,
    InvitationNotice,
    PaymentFailedNotice,
    PlanChangedNotice,
    UsageNotice,
    VerifyEmailNotice,
    budget_email,
    invitation_email,
    make_message_id,
    payment_failed_email,
    plan_changed_email,
    usage_email,
    verify_email_email,
)
from modelux_server.notifications.sales_messages import SalesInquiryNotice, sales_inquiry_email

Notice = (
    UsageNotice
    | PaymentFailedNotice
    | PlanChangedNotice
    | InvitationNotice
    | VerifyEmailNotice
    | BudgetNotice
    | SalesInquiryNotice
    | ContractEndingNotice
    | InvoiceOverdueNotice
)
Builder = Callable[..., EmailMessage]
Transform = Callable[[str], str]

# notice fields stored sealed (encrypted) in the outbox row
SEALED = frozenset({"link"})

_BY_KIND: dict[str, tuple[type[Any], Builder]] = {
    "soft_nudge": (UsageNotice, usage_email),
    "hard_cap": (UsageNotice, usage_email),
    "payment_failed": (PaymentFailedNotice, payment_failed_email),
    "plan_changed": (PlanChangedNotice, plan_changed_email),
    "invitation": (InvitationNotice, invitation_email),
    "verify_email": (VerifyEmailNotice, verify_email_email),
    "budget_alert": (BudgetNotice, budget_email),
    "sales_inquiry": (SalesInquiryNotice, sales_inquiry_email),
    "contract_ending": (ContractEndingNotice, contract_ending_email),
    "invoice_overdue": (InvoiceOverdueNotice, invoice_overdue_email),
}


def _no_key(value: str) -> str:
    raise ValueError("this notice holds a sealed field: pass seal= / unseal=")


def to_payload(notice: Notice, seal: Transform = _no_key) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for key, value in dataclasses.asdict(notice).items():
        if key in SEALED:
            value = seal(value)
        payload[key] = value.isoformat() if isinstance(value, datetime) else value
    return payload


def from_payload(kind: str, payload: dict[str, Any], unseal: Transform = _no_key) -> Notice:
    cls = _BY_KIND[kind][0]
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        value = payload[f.name]
        hint = hints[f.name]
        if f.name in SEALED:
            value = unseal(value)
        elif isinstance(value, str) and (hint is datetime or datetime in typing.get_args(hint)):
            value = datetime.fromisoformat(value)
        values[f.name] = value
    notice: Notice = cls(**values)
    return notice


def message_id_for(kind: str, dedupe_key: str, public_url: str) -> str:
    """Stable per notification: a resent attempt is the same message to mail systems."""
    domain = urlsplit(public_url).hostname or "modelux.local"
    return make_message_id(kind, dedupe_key, domain=domain)


def build_email(kind: str, notice: Notice, *, to: list[str], sender: str, message_id: str) -> EmailMessage:
    builder = _BY_KIND[kind][1]
    return builder(notice, to=to, sender=sender, message_id=message_id)
