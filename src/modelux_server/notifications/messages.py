"""Build the notification emails (plain text + HTML) from Jinja2 templates.

All formatting (numbers, money, dates, wording that depends on optional fields)
happens here in Python so the templates stay dumb and the text and HTML parts
cannot drift apart.
"""

from __future__ import annotations

import functools
import hashlib
import pathlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Literal

import jinja2

__all__ = [
    "BudgetNotice",
    "InvitationNotice",
    "PaymentFailedNotice",
    "PlanChangedNotice",
    "UsageNotice",
    "VerifyEmailNotice",
    "budget_email",
    "format_datetime_utc",
    "format_money",
    "format_usd_micros",
    "invitation_email",
    "make_message_id",
    "payment_failed_email",
    "plan_changed_email",
    "usage_email",
    "verify_email_email",
]

TEMPLATES_DIR = pathlib.Path(__file__).parent / "templates"
SUBJECT_PREFIX = "[modelux]"
NOTIFICATION_HEADER = "X-Modelux-Notification"


# ------------------------------------------------------------------------ notices


@dataclass(frozen=True)
class UsageNotice:
    kind: Literal["soft_nudge", "hard_cap"]
    org_name: str
    org_id: str
    limit_name: str  # e.g. "monthly_requests"
    limit: int
    used: int
    percent: int
    resets_at: datetime  # UTC
    plan_name: str
    upgrade_plan_name: str | None  # plan that lifts the limit, if any
    upgrade_url: str | None  # None -> "contact sales" wording
    billing_url: str  # https://host/settings/billing


@dataclass(frozen=True)
class PaymentFailedNotice:
    org_name: str
    org_id: str
    plan_name: str
    amount_due_cents: int
    currency: str  # ISO 4217, any case ("usd")
    next_attempt_at: datetime | None  # None -> no automatic retry scheduled
    billing_url: str
    portal_hint: str  # e.g. "Use “Manage billing” to open the Stripe customer portal."
    # the bank asks the customer to authenticate (3-D Secure): where to do it
    action_url: str | None = None


@dataclass(frozen=True)
class PlanChangedNotice:
    org_name: str
    org_id: str
    from_plan_name: str
    to_plan_name: str
    interval: str  # "month" / "year" (or already human: "monthly")
    changed_by: str | None  # user email/name; None -> automatic
    source: str  # e.g. "stripe", "admin", "self_serve"
    effective_at: datetime
    features_removed: list[str]
    features_added: list[str]
    billing_url: str


@dataclass(frozen=True)
class InvitationNotice:
    org_name: str
    org_id: str
    role: str  # owner / admin / member
    invited_by: str | None  # the inviter's email; None when a management key sent it
    link: str  # one-time acceptance link; sealed in the outbox (see compose.SEALED)
    expires_at: datetime


@dataclass(frozen=True)
class VerifyEmailNotice:
    org_name: str
    org_id: str
    link: str  # confirmation link; sealed in the outbox (see compose.SEALED)
    expires_at: datetime


@dataclass(frozen=True)
class BudgetNotice:
    """A spend budget reached one of its thresholds in one period (budget/alerts.py)."""

    org_name: str
    org_id: str
    budget_name: str
    budget_id: str
    scope_label: str  # "the organization", "project web", "API key ci (project web)"
    action: str  # "block" (requests refused at the cap) or "alert" (they continue)
    threshold: int  # percent of the cap, 1-100
    spent_micros: int  # settled spend in the period, micro-dollars
    cap_micros: int
    period: str  # daily / weekly / monthly / billing
    resets_at: datetime  # UTC: the period's end
    budgets_url: str  # https://host/budgets
    billing_url: str  # the footer's settings link


# --------------------------------------------------------------------- formatting

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def format_datetime_utc(value: datetime) -> str:
    """``December 14, 2026 00:00 UTC``; naive datetimes are taken to be UTC.

    Month names come from a table rather than ``%B`` so the output does not depend
    on the server's locale.
    """
    dt = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return f"{_MONTHS[dt.month - 1]} {dt.day}, {dt.year} {dt:%H:%M} UTC"


_CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
# Stripe's zero-decimal currencies: amounts are already in whole units.
_ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA"}
    | {"PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)


def format_money(amount_cents: int, currency: str) -> str:
    """Integer minor units to display text: ``4900, "usd"`` -> ``$49.00``."""
    code = currency.upper()
    sign = "-" if amount_cents < 0 else ""
    minor = abs(amount_cents)
    number = f"{minor:,}" if code in _ZERO_DECIMAL else f"{minor // 100:,}.{minor % 100:02d}"
    symbol = _CURRENCY_SYMBOLS.get(code)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {code}"


def format_usd_micros(amount_micros: int) -> str:
    """Micro-dollars as dollars, cents always and smaller digits only when there are some:
    ``12_500_000`` -> ``$12.50``, ``4_200`` -> ``$0.0042``."""
    sign = "-" if amount_micros < 0 else ""
    whole, rest = divmod(abs(amount_micros), 1_000_000)
    fraction = f"{rest:06d}".rstrip("0").ljust(2, "0")
    return f"{sign}${whole:,}.{fraction}"


def make_message_id(*parts: object, domain: str = "modelux.local") -> str:
    """A deterministic ``<...@domain>`` Message-ID from the event's identity.

    Callers pass whatever identifies the notification (kind, org id, period...);
    the same parts always yield the same id, so a retried send is recognisably
    the same message to both the outbox and receiving mail systems.
    """
    if not parts:
        raise ValueError("make_message_id needs at least one part")
    raw = "\x1f".join(str(p) for p in parts)
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", str(parts[0])).strip("-")[:40] or "n"
    digest = hashlib.sha256(raw.encode()).hexdigest()[:32]
    return f"<{readable}.{digest}@{domain}>"


def _one_line(value: str) -> str:
    # Org names are user input; collapsing whitespace keeps subjects on one line
    # (the email package refuses CR/LF in headers rather than silently folding).
    return " ".join(value.split())


def _limit_labels(limit_name: str) -> tuple[str, str]:
    """("monthly requests", "monthly request limit") from "monthly_requests"."""
    plural = " ".join(limit_name.replace("-", "_").split("_")).strip() or "usage"
    words = plural.split(" ")
    last = words[-1]
    if last.endswith("s") and not last.endswith("ss") and len(last) > 1:
        words[-1] = last[:-1]
    return plural, " ".join(words) + " limit"


def _interval_label(interval: str) -> str:
    return {"month": "monthly", "year": "yearly", "annual": "yearly", "week": "weekly"}.get(
        interval.lower(), interval
    )


# ---------------------------------------------------------------------- rendering


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        # Escape only the HTML bodies; escaping the text part would show "&amp;".
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html",), default_for_string=False, default=False
        ),
        # A typo in a template variable should fail tests, not send "None".
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _render(name: str, context: Mapping[str, Any]) -> tuple[str, str]:
    env = _environment()
    text = env.get_template(f"{name}.txt").render(context)
    html = env.get_template(f"{name}.html").render(context)
    return text, html


def _normalise_message_id(message_id: str) -> str:
    mid = message_id.strip()
    if not mid or any(c in mid for c in "\r\n \t"):
        raise ValueError("message_id must be a non-empty token without whitespace")
    if not mid.startswith("<"):
        mid = f"<{mid}>"
    return mid


def _build(
    *,
    kind: str,
    template: str,
    subject: str,
    context: Mapping[str, Any],
    to: list[str],
    sender: str,
    message_id: str,
    org_id: str,
) -> EmailMessage:
    if not to:
        raise ValueError("at least one recipient is required")
    text, html = _render(template, {**context, "subject": subject})

    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = _normalise_message_id(message_id)
    msg[NOTIFICATION_HEADER] = kind
    msg["X-Modelux-Org-Id"] = org_id
    # RFC 3834: tells vacation responders and ticket systems not to auto-reply.
    msg["Auto-Submitted"] = "auto-generated"
    # Plain text first, HTML last: clients show the last alternative they support.
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg


# ------------------------------------------------------------------------ builders


def usage_email(notice: UsageNotice, *, to: list[str], sender: str, message_id: str) -> EmailMessage:
    org = _one_line(notice.org_name)
    limit_label, limit_phrase = _limit_labels(notice.limit_name)
    if notice.kind == "hard_cap":
        subject = f"{SUBJECT_PREFIX} {org} has reached its {limit_phrase}"
    elif notice.kind == "soft_nudge":
        subject = f"{SUBJECT_PREFIX} {org} has used {notice.percent}% of its {limit_label}"
    else:  # pragma: no cover - guarded by the Literal type, kept for untyped callers
        raise ValueError(f"unknown usage notice kind {notice.kind!r}")

    context = {
        "kind": notice.kind,
        "hard_cap": notice.kind == "hard_cap",
        "org_name": notice.org_name,
        "plan_name": notice.plan_name,
        "limit_label": limit_label,
        "limit_phrase": limit_phrase,
        "used": f"{notice.used:,}",
        "limit": f"{notice.limit:,}",
        "percent": notice.percent,
        "resets_at": format_datetime_utc(notice.resets_at),
        "has_upgrade": notice.upgrade_url is not None,
        "upgrade_plan_name": notice.upgrade_plan_name or "a higher plan",
        "upgrade_url": notice.upgrade_url,
        "billing_url": notice.billing_url,
    }
    return _build(
        kind=notice.kind,
        template="usage",
        subject=subject,
        context=context,
        to=to,
        sender=sender,
        message_id=message_id,
        org_id=notice.org_id,
    )


def payment_failed_email(
    notice: PaymentFailedNotice, *, to: list[str], sender: str, message_id: str
) -> EmailMessage:
    org = _one_line(notice.org_name)
    context = {
        "org_name": notice.org_name,
        "plan_name": notice.plan_name,
        "amount_due": format_money(notice.amount_due_cents, notice.currency),
        "next_attempt_at": (format_datetime_utc(notice.next_attempt_at) if notice.next_attempt_at else None),
        "billing_url": notice.billing_url,
        "portal_hint": notice.portal_hint,
        "action_url": notice.action_url,
    }
    subject = (
        f"{SUBJECT_PREFIX} Confirm your payment for {org}"
        if notice.action_url
        else f"{SUBJECT_PREFIX} Payment failed for {org}"
    )
    return _build(
        kind="payment_failed",
        template="payment_failed",
        subject=subject,
        context=context,
        to=to,
        sender=sender,
        message_id=message_id,
        org_id=notice.org_id,
    )


def plan_changed_email(
    notice: PlanChangedNotice, *, to: list[str], sender: str, message_id: str
) -> EmailMessage:
    org = _one_line(notice.org_name)
    context = {
        "org_name": notice.org_name,
        "from_plan_name": notice.from_plan_name,
        "to_plan_name": notice.to_plan_name,
        "interval": _interval_label(notice.interval),
        "changed_by": notice.changed_by,
        "source": notice.source.replace("_", " "),
        "effective_at": format_datetime_utc(notice.effective_at),
        "features_removed": list(notice.features_removed),
        "features_added": list(notice.features_added),
        "billing_url": notice.billing_url,
    }
    return _build(
        kind="plan_changed",
        template="plan_changed",
        subject=f"{SUBJECT_PREFIX} Your {org} plan changed to {_one_line(notice.to_plan_name)}",
        context=context,
        to=to,
        sender=sender,
        message_id=message_id,
        org_id=notice.org_id,
    )


_PERIOD_LABELS = {"daily": "day", "weekly": "week", "monthly": "month", "billing": "billing period"}


def budget_email(notice: BudgetNotice, *, to: list[str], sender: str, message_id: str) -> EmailMessage:
    name = _one_line(notice.budget_name)
    cap = format_usd_micros(notice.cap_micros)
    reached_cap = notice.threshold >= 100
    if reached_cap:
        subject = f"{SUBJECT_PREFIX} Budget {name} reached its {cap} cap"
    else:
        subject = f"{SUBJECT_PREFIX} Budget {name} reached {notice.threshold}% of {cap}"
    percent = notice.spent_micros * 100 // notice.cap_micros if notice.cap_micros > 0 else 100
    context = {
        "org_name": notice.org_name,
        "budget_name": notice.budget_name,
        "scope_label": notice.scope_label,
        "threshold": notice.threshold,
        "reached_cap": reached_cap,
        "blocks": notice.action == "block",
        "spent": format_usd_micros(notice.spent_micros),
        "cap": cap,
        "percent": percent,
        "period_label": _PERIOD_LABELS.get(notice.period, notice.period),
        "resets_at": format_datetime_utc(notice.resets_at),
        "budgets_url": notice.budgets_url,
        "billing_url": notice.billing_url,
    }
    return _build(
        kind="budget_alert",
        template="budget",
        subject=subject,
        context=context,
        to=to,
        sender=sender,
        message_id=message_id,
        org_id=notice.org_id,
    )


def invitation_email(
    notice: InvitationNotice, *, to: list[str], sender: str, message_id: str
) -> EmailMessage:
    org = _one_line(notice.org_name)
    context = {
        "org_name": notice.org_name,
        "role": notice.role,
        "invited_by": notice.invited_by,
        "link": notice.link,
        "expires_at": format_datetime_utc(notice.expires_at),
    }
    return _build(
        kind="invitation",
        template="invitation",
        subject=f"{SUBJECT_PREFIX} You are invited to join {org}",
        context=context,
        to=to,
        sender=sender,
        message_id=message_id,
        org_id=notice.org_id,
    )


def verify_email_email(
    notice: VerifyEmailNotice, *, to: list[str], sender: str, message_id: str
) -> EmailMessage:
    context = {
        "org_name": notice.org_name,
        "link": notice.link,
        "expires_at": format_datetime_utc(notice.expires_at),
    }
    return _build(
        kind="verify_email",
        template="verify_email",
        subject=f"{SUBJECT_PREFIX} Confirm your email address",
        context=context,
        to=to,
        sender=sender,
        message_id=message_id,
        org_id=notice.org_id,
    )
