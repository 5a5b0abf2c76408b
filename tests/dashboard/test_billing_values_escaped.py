"""Values from Stripe and from tenants on the billing pages: shown as text, links only when http(s).

Stripe's real invoice numbers cannot hold markup and the emulator makes
well-formed ones, so the invoice table and the payment links are rendered
here directly from the templates with the values an attacker would choose.
The tax ID case runs end to end in test_billing_payments_browser.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from markupsafe import escape

from modelux_server.billing.processor import InvoiceView
from modelux_server.dashboard import billing_view, web

NUMBER = '<script>alert("number")</script>'
PDF = 'https://files.stripe.test/in_1.pdf?a=1&b="><img src=x onerror=alert(1)>'
CURSOR = "in_1&limit=<b>"


def _invoice(**changes: Any) -> InvoiceView:
    fields: dict[str, Any] = {
        "id": "in_1",
        "customer_id": "cus_1",
        "number": NUMBER,
        "status": "open",
        "created": datetime(2026, 1, 10, tzinfo=UTC),
        "period_start": datetime(2026, 1, 10, tzinfo=UTC),
        "period_end": datetime(2026, 2, 10, tzinfo=UTC),
        "currency": "usd",
        "total": 4900,
        "tax": 0,
        "amount_due": 4900,
        "amount_paid": 0,
        "credited": 0,
        "billing_reason": "subscription_create",
        "subscription_id": "sub_1",
        "hosted_invoice_url": "javascript:alert(document.cookie)",
        "invoice_pdf": PDF,
    }
    return InvoiceView(**{**fields, **changes})


def _render(name: str, **context: Any) -> str:
    base = {"viewer": None, "csrf": "", "path": "/settings/billing", "problem": None, "notice": None}
    return web.templates.env.get_template(name).render(**{**base, **context})


def _problem_box(problem: dict[str, Any]) -> str:
    template = web.templates.env.from_string(
        '{% from "_macros.html" import problem_box %}{{ problem_box(problem) }}'
    )
    return template.render(problem=problem)


def test_an_invoice_number_and_links_are_escaped_and_a_script_url_is_dropped() -> None:
    page = _render(
        "billing_invoices.html",
        invoices=[_invoice()],
        next_cursor=CURSOR,
        paged=False,
        billing_mode="stripe",
        level=billing_view.invoice_level,
    )

    assert NUMBER not in page and str(escape(NUMBER)) in page
    assert "<img" not in page
    assert f'href="{escape(PDF)}"' in page
    assert "javascript:" not in page  # no "Pay" link rather than a script one
    assert 'href="/settings/billing/invoices?cursor=in_1%26limit%3D%3Cb%3E"' in page
    assert "$49.00" in page and "Jan 10, 2026 – Feb 10, 2026" in page


def test_the_payment_links_of_an_error_appear_only_for_http_addresses() -> None:
    invoice_page = "https://invoice.stripe.test/i/acct_1/in_1?s=ap&x=<y>"
    needs_action = {"code": "payment_action_required", "message": "m", "hosted_invoice_url": invoice_page}
    declined = {"code": "payment_failed", "message": "m", "hosted_invoice_url": invoice_page}
    forged = {**needs_action, "hosted_invoice_url": "javascript:alert(1)"}

    confirm = _problem_box(needs_action)
    assert f'href="{escape(invoice_page)}" data-testid="confirm-payment">Confirm the payment</a>' in confirm
    assert "Pay the invoice" not in confirm
    assert 'data-testid="pay-invoice">Pay the invoice with another card</a>' in _problem_box(declined)
    assert "href" not in _problem_box(forged) and "javascript:" not in _problem_box(forged)
    assert "href" not in _problem_box({"code": "payment_failed", "message": "m"})


def test_amounts_keep_their_sign_and_currency() -> None:
    assert web.amount(-3675) == "-$36.75"
    assert web.amount(15000, "usd") == "$150.00"
    assert web.amount(1999, "eur") == "€19.99"
    assert web.web_link("http://127.0.0.1:9/invoice/in_1") == "http://127.0.0.1:9/invoice/in_1"
    assert web.web_link("javascript:alert(1)") == web.web_link("data:text/html,x") == web.web_link(None) == ""
    assert web.web_link("//evil.test/x") == ""
