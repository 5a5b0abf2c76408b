from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage

import pytest

from modelux_server.notifications.messages import (
    PaymentFailedNotice,
    PlanChangedNotice,
    UsageNotice,
    format_datetime_utc,
    format_money,
    make_message_id,
    payment_failed_email,
    plan_changed_email,
    usage_email,
)

SENDER = "modelux <noreply@modelux.test>"
TO = ["owner@acme.test", "admin@acme.test"]
BILLING = "https://modelux.test/settings/billing"
UPGRADE = "https://modelux.test/settings/billing?plan=pro"


def usage_notice(**overrides: object) -> UsageNotice:
    fields: dict[str, object] = {
        "kind": "soft_nudge",
        "org_name": "Acme",
        "org_id": "org_123",
        "limit_name": "monthly_requests",
        "limit": 10_000,
        "used": 8_000,
        "percent": 80,
        "resets_at": datetime(2026, 12, 14, tzinfo=UTC),
        "plan_name": "Free",
        "upgrade_plan_name": "Pro",
        "upgrade_url": UPGRADE,
        "billing_url": BILLING,
    }
    fields.update(overrides)
    return UsageNotice(**fields)  # type: ignore[arg-type]


def parts(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()  # type: ignore[attr-defined]


def build_usage(**overrides: object) -> EmailMessage:
    return usage_email(usage_notice(**overrides), to=TO, sender=SENDER, message_id="<u1@modelux.test>")


# ----------------------------------------------------------------------- usage


def test_usage_email_structure_and_headers() -> None:
    msg = build_usage()
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["Subject"] == "[modelux] Acme has used 80% of its monthly requests"
    assert msg["From"] == SENDER
    assert msg["To"] == "owner@acme.test, admin@acme.test"
    assert msg["Message-ID"] == "<u1@modelux.test>"
    assert msg["X-Modelux-Notification"] == "soft_nudge"
    assert msg["X-Modelux-Org-Id"] == "org_123"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Date"] is not None


def test_soft_nudge_content_in_both_parts() -> None:
    for body in parts(build_usage()):
        assert "Acme" in body
        assert "8,000 of 10,000 monthly requests (80%)" in body
        assert "December 14, 2026 00:00 UTC" in body
        assert "Pro" in body
        assert "Settings" in body and "Billing" in body
        assert BILLING in body
    text, html = parts(build_usage())
    assert UPGRADE in text
    # In HTML the URL sits in an attribute, so '&' would be escaped; this one has none.
    assert f'href="{UPGRADE}"' in html
    assert "Contact sales" not in text and "Contact sales" not in html


def test_hard_cap_subject_and_blocking_wording() -> None:
    msg = build_usage(kind="hard_cap", used=10_000, percent=100)
    assert msg["Subject"] == "[modelux] Acme has reached its monthly request limit"
    assert msg["X-Modelux-Notification"] == "hard_cap"
    for body in parts(msg):
        assert "blocked with HTTP 402" in body
        assert "10,000 of 10,000" in body
        assert "December 14, 2026 00:00 UTC" in body
        assert "Upgrade" in body or "Upgrading" in body


def test_contact_sales_when_no_upgrade() -> None:
    msg = build_usage(kind="hard_cap", upgrade_plan_name=None, upgrade_url=None)
    for body in parts(msg):
        assert "Contact sales" in body
        assert "?plan=" not in body
        assert "Upgrading to" not in body


def test_upgrade_url_without_plan_name_uses_generic_wording() -> None:
    text, _ = parts(build_usage(upgrade_plan_name=None))
    assert "Upgrading to a higher plan lifts this limit" in text
    assert UPGRADE in text


def test_html_escapes_org_name_but_text_keeps_it() -> None:
    evil = '<script>alert("x")</script> & Co'
    msg = build_usage(org_name=evil)
    text, html = parts(msg)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "&amp; Co" in html
    assert evil in text
    assert msg["Subject"] == f"[modelux] {evil} has used 80% of its monthly requests"


def test_upgrade_url_query_is_escaped_in_html_attribute() -> None:
    _, html = parts(build_usage(upgrade_url="https://x.test/b?plan=pro&ref=mail"))
    assert 'href="https://x.test/b?plan=pro&amp;ref=mail"' in html


def test_org_name_with_newline_cannot_inject_headers() -> None:
    msg = build_usage(org_name="Acme\r\nBcc: victim@example.com")
    assert msg["Subject"] == "[modelux] Acme Bcc: victim@example.com has used 80% of its monthly requests"
    assert msg["Bcc"] is None


def test_other_limit_names_are_humanised() -> None:
    msg = build_usage(kind="hard_cap", limit_name="monthly_tokens")
    assert msg["Subject"] == "[modelux] Acme has reached its monthly token limit"


def test_message_id_is_wrapped_and_validated() -> None:
    msg = usage_email(usage_notice(), to=TO, sender=SENDER, message_id="abc@modelux.test")
    assert msg["Message-ID"] == "<abc@modelux.test>"
    with pytest.raises(ValueError):
        usage_email(usage_notice(), to=TO, sender=SENDER, message_id="a b@x")
    with pytest.raises(ValueError):
        usage_email(usage_notice(), to=[], sender=SENDER, message_id="<a@x>")


def test_make_message_id_is_stable() -> None:
    a = make_message_id("usage", "org_123", "hard_cap", "2026-12", domain="modelux.test")
    b = make_message_id("usage", "org_123", "hard_cap", "2026-12", domain="modelux.test")
    c = make_message_id("usage", "org_123", "soft_nudge", "2026-12", domain="modelux.test")
    assert a == b != c
    assert a.startswith("<usage.") and a.endswith("@modelux.test>")
    msg = usage_email(usage_notice(), to=TO, sender=SENDER, message_id=a)
    assert msg["Message-ID"] == a


# --------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("cents", "currency", "expected"),
    [
        (4900, "usd", "$49.00"),
        (5, "USD", "$0.05"),
        (123456789, "usd", "$1,234,567.89"),
        (-1250, "usd", "-$12.50"),
        (1999, "eur", "€19.99"),
        (1000, "chf", "10.00 CHF"),
        (5000, "jpy", "¥5,000"),
    ],
)
def test_format_money(cents: int, currency: str, expected: str) -> None:
    assert format_money(cents, currency) == expected


def test_format_datetime_utc() -> None:
    assert format_datetime_utc(datetime(2026, 12, 14, tzinfo=UTC)) == "December 14, 2026 00:00 UTC"
    # Converted to UTC, and naive values are treated as UTC.
    plus2 = timezone(timedelta(hours=2))
    assert format_datetime_utc(datetime(2026, 1, 1, 1, 30, tzinfo=plus2)) == "December 31, 2025 23:30 UTC"
    assert format_datetime_utc(datetime(2026, 3, 5, 9, 7)) == "March 5, 2026 09:07 UTC"


# ------------------------------------------------------------- payment / plan


def payment_notice(**overrides: object) -> PaymentFailedNotice:
    fields: dict[str, object] = {
        "org_name": "Acme",
        "org_id": "org_123",
        "plan_name": "Pro",
        "amount_due_cents": 4900,
        "currency": "usd",
        "next_attempt_at": datetime(2026, 12, 17, 8, 0, tzinfo=UTC),
        "billing_url": BILLING,
        "portal_hint": "Use Manage billing to open the customer portal.",
    }
    fields.update(overrides)
    return PaymentFailedNotice(**fields)  # type: ignore[arg-type]


def test_payment_failed_email() -> None:
    msg = payment_failed_email(payment_notice(), to=TO, sender=SENDER, message_id="<p1@x>")
    assert msg["Subject"] == "[modelux] Payment failed for Acme"
    assert msg["X-Modelux-Notification"] == "payment_failed"
    assert msg["Message-ID"] == "<p1@x>"
    for body in parts(msg):
        assert "$49.00" in body
        assert "Pro" in body
        assert "December 17, 2026 08:00 UTC" in body
        assert BILLING in body
        assert "customer portal" in body


def test_payment_failed_without_next_attempt() -> None:
    msg = payment_failed_email(
        payment_notice(next_attempt_at=None, org_name="<b>Acme</b>"),
        to=TO,
        sender=SENDER,
        message_id="<p2@x>",
    )
    text, html = parts(msg)
    assert "No further automatic attempts" in text
    assert "No further automatic attempts" in html
    assert "<b>Acme</b>" not in html and "&lt;b&gt;Acme&lt;/b&gt;" in html


def plan_notice(**overrides: object) -> PlanChangedNotice:
    fields: dict[str, object] = {
        "org_name": "Acme",
        "org_id": "org_123",
        "from_plan_name": "Free",
        "to_plan_name": "Pro",
        "interval": "month",
        "changed_by": "alice@acme.test",
        "source": "self_serve",
        "effective_at": datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
        "features_removed": [],
        "features_added": ["SSO", "Audit log"],
        "billing_url": BILLING,
    }
    fields.update(overrides)
    return PlanChangedNotice(**fields)  # type: ignore[arg-type]


def test_plan_changed_email() -> None:
    msg = plan_changed_email(plan_notice(), to=TO, sender=SENDER, message_id="<c1@x>")
    assert msg["Subject"] == "[modelux] Your Acme plan changed to Pro"
    assert msg["X-Modelux-Notification"] == "plan_changed"
    for body in parts(msg):
        assert "Free" in body and "Pro" in body
        assert "monthly billing" in body
        assert "December 1, 2026 12:00 UTC" in body
        assert "alice@acme.test" in body
        assert "SSO" in body and "Audit log" in body
        assert "No longer included" not in body


def test_plan_changed_automatic_with_removed_features() -> None:
    msg = plan_changed_email(
        plan_notice(
            from_plan_name="Pro",
            to_plan_name="Free",
            changed_by=None,
            source="stripe",
            features_added=[],
            features_removed=["<SSO>"],
        ),
        to=TO,
        sender=SENDER,
        message_id="<c2@x>",
    )
    text, html = parts(msg)
    assert "automatically (via stripe)" in text
    assert "No longer included" in text and "- <SSO>" in text
    assert "<li>&lt;SSO&gt;</li>" in html
    assert "Now included" not in html


def test_notices_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        usage_notice().used = 1  # type: ignore[misc]
