"""The email ahead of an Enterprise contract's end (enterprise/contracts.py).

One notice, two readers: the organization's owners, and the operator (who gets the
organization's id and what modelux will do on the day). Built like the emails in
messages.py, from the `contract_ending` templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Literal

from modelux_server.notifications.messages import SUBJECT_PREFIX, _build, _one_line, format_datetime_utc


@dataclass(frozen=True)
class ContractEndingNotice:
    audience: Literal["customer", "operator"]
    org_name: str
    org_id: str
    plan_name: str  # the Enterprise plan's name
    ends_at: datetime  # 00:00 UTC of the contract's end date
    days_left: int
    auto_renew: bool
    renews_until: datetime | None  # the next term's end, when it renews
    notice_by: datetime | None  # the last day to give notice not to renew (None: none asked)
    end_plan_name: str | None  # the plan after a contract that does not renew
    billing_url: str


def format_day(value: datetime) -> str:
    """``March 1, 2027``: the date part of format_datetime_utc."""
    return format_datetime_utc(value).rsplit(" ", 2)[0]


def contract_ending_email(
    notice: ContractEndingNotice, *, to: list[str], sender: str, message_id: str
) -> EmailMessage:
    org = _one_line(notice.org_name)
    day = format_day(notice.ends_at)
    if notice.audience == "operator":
        what = "renews" if notice.auto_renew else f"ends (to {_one_line(notice.end_plan_name or '?')})"
        subject = f"{SUBJECT_PREFIX} {org} ({notice.org_id}): contract {what} on {day}"
    elif notice.auto_renew:
        subject = f"{SUBJECT_PREFIX} Your {org} contract renews on {day}"
    else:
        subject = f"{SUBJECT_PREFIX} Your {org} contract ends on {day}"
    notice_by = notice.notice_by
    context = {
        "operator": notice.audience == "operator",
        "org_name": notice.org_name,
        "org_id": notice.org_id,
        "plan_name": notice.plan_name,
        "ends_on": day,
        "days_left": notice.days_left,
        "in_days": "tomorrow" if notice.days_left == 1 else f"in {notice.days_left} days",
        "auto_renew": notice.auto_renew,
        "renews_until": format_day(notice.renews_until) if notice.renews_until else None,
        "notice_by": format_day(notice_by) if notice_by else None,
        # the notice period is longer than what is left: the day to give notice has gone
        "notice_passed": notice_by is not None and (notice.ends_at - notice_by).days > notice.days_left,
        "end_plan_name": notice.end_plan_name,
        "billing_url": notice.billing_url,
    }
    return _build(
        kind="contract_ending",
        template="contract_ending",
        subject=subject,
        context=context,
        to=to,
        sender=sender,
        message_id=message_id,
        org_id=notice.org_id,
    )
