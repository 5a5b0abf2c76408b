"""The email to the sales address for a "Talk to sales" inquiry (sales/service.py).
Built like the emails in messages.py, from the `sales_inquiry` templates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from modelux_server.notifications.messages import SUBJECT_PREFIX, _build, _one_line, format_datetime_utc


@dataclass(frozen=True)
class SalesInquiryNotice:
    """A "Talk to sales" inquiry, for the sales address (sales/service.py).

    Everything but the ids and dates is the organization's own text: the HTML
    part escapes it, and the subject keeps the organization's name on one line.
    """

    org_name: str
    org_id: str
    inquiry_id: str
    plan_name: str  # the organization's plan when it asked
    requested_by: str  # a dashboard user's email, or a management key's id
    source: str  # api / dashboard / mcp
    reply_to: list[str]  # the contact given, else the sender's email, else the owners'
    seats: int | None
    monthly_requests: int | None
    needs: list[str]  # as people read them (sales.schemas.NEED_LABELS)
    message: str
    received_at: datetime


def sales_inquiry_email(
    notice: SalesInquiryNotice, *, to: list[str], sender: str, message_id: str
) -> EmailMessage:
    org = _one_line(notice.org_name)
    requests = notice.monthly_requests
    context = {
        "org_name": notice.org_name,
        "org_id": notice.org_id,
        "inquiry_id": notice.inquiry_id,
        "plan_name": notice.plan_name,
        "requested_by": notice.requested_by,
        "source": {"api": "the management API", "mcp": "an MCP tool"}.get(notice.source, "the dashboard"),
        "reply_to": ", ".join(notice.reply_to),
        "seats": "not given" if notice.seats is None else f"{notice.seats:,}",
        "monthly_requests": "not given" if requests is None else f"{requests:,}",
        "needs": list(notice.needs),
        "message": notice.message,
        "received_at": format_datetime_utc(notice.received_at),
    }
    msg = _build(
        kind="sales_inquiry",
        template="sales_inquiry",
        subject=f"{SUBJECT_PREFIX} Sales inquiry from {org}",
        context=context,
        to=to,
        sender=sender,
        message_id=message_id,
        org_id=notice.org_id,
    )
    if notice.reply_to:
        # the addresses were checked when stored (no CR/LF, commas or brackets)
        msg["Reply-To"] = ", ".join(notice.reply_to)
    return msg
