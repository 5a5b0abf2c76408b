"""Subscriptions paid by invoice (`collection_method=send_invoice`) in the Stripe emulator.

What Stripe does, and the emulator must: the first invoice stays a draft for an hour,
then is finalized and emailed, not charged; it is due `days_until_due` days after that;
unpaid past that, the subscription goes `past_due` and `invoice.overdue` is sent; paying
it (on the hosted page, through the API, or out of band) makes it paid and the
subscription active again.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
import stripe

from tests.support import test_stripe_emulator as main
from tests.support.stripe_emulator import StripeEmulator
from tests.support.test_stripe_emulator import DAY, JAN_1_2026, Receiver

HOUR = 3600
SENT = JAN_1_2026 + HOUR  # when a subscription made on Jan 1 sends its first invoice

receiver, emu, client, catalog = main.receiver, main.emu, main.client, main.catalog

Prices = dict[str, stripe.Price]


def invoiced(client: stripe.StripeClient, price: stripe.Price, **extra: Any) -> stripe.Subscription:
    customer = client.v1.customers.create(params={"email": "ap@acme.example", "name": "Acme AP"})
    params: dict[str, Any] = {
        "customer": customer.id,
        "items": [{"price": price.id, "quantity": 1}],
        "collection_method": "send_invoice",
        "days_until_due": 30,
        "metadata": {"org_id": "org_1"},
    }
    params.update(extra)
    return client.v1.subscriptions.create(params=cast(Any, params))


def events_of(receiver: Receiver, object_id: str) -> list[str]:
    return [e["type"] for e in receiver.events if e["data"]["object"]["id"] == object_id]


def test_the_first_invoice_is_sent_to_be_paid_not_charged(
    emu: StripeEmulator, client: stripe.StripeClient, catalog: Prices, receiver: Receiver
) -> None:
    sub = invoiced(
        client,
        catalog["pro_monthly"],
        invoice_settings={"custom_fields": [{"name": "PO number", "value": "PO-7"}]},
    )
    emu.wait_for_webhooks()
    assert (sub.status, sub.collection_method, sub.days_until_due) == ("active", "send_invoice", 30)
    draft = client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert (draft.status, draft.automatically_finalizes_at, draft.hosted_invoice_url) == ("draft", SENT, None)
    assert events_of(receiver, draft.id) == ["invoice.created"]

    emu.advance(HOUR)  # Stripe finalizes a send_invoice subscription's first invoice an hour later
    invoice = client.v1.invoices.retrieve(draft.id)
    assert (invoice.status, invoice.collection_method) == ("open", "send_invoice")
    assert (invoice.amount_due, invoice.amount_paid, invoice.attempt_count) == (3000, 0, 0)
    assert invoice.due_date == SENT + 30 * DAY
    assert invoice.hosted_invoice_url and invoice.hosted_invoice_url.endswith(f"/invoice/{invoice.id}")
    assert invoice.number is not None and invoice.next_payment_attempt is None
    assert [(f.name, f.value) for f in invoice.custom_fields or []] == [("PO number", "PO-7")]
    # Stripe emails it: created, finalized, then sent; no payment attempt, no charge
    assert events_of(receiver, invoice.id) == ["invoice.created", "invoice.finalized", "invoice.sent"]
    sent = next(e for e in receiver.events if e["type"] == "invoice.sent")["data"]["object"]
    assert (sent["status"], sent["due_date"]) == ("open", SENT + 30 * DAY)
    assert client.v1.invoice_payments.list(params={"invoice": invoice.id}).data[0].status == "open"


def test_days_until_due_needs_send_invoice_on_create(client: stripe.StripeClient, catalog: Prices) -> None:
    customer = client.v1.customers.create(params={"email": "a@example.com"})
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.subscriptions.create(
            params={
                "customer": customer.id,
                "items": [{"price": catalog["pro_monthly"].id}],
                "days_until_due": 30,
            }
        )
    assert (err.value.http_status, err.value.param) == (400, "days_until_due")
    assert client.v1.subscriptions.list(params={"customer": customer.id}).data == []


def test_unpaid_past_the_due_date_the_subscription_goes_past_due_once(
    emu: StripeEmulator, client: stripe.StripeClient, catalog: Prices, receiver: Receiver
) -> None:
    sub = invoiced(client, catalog["pro_yearly"], days_until_due=14)
    invoice_id = str(sub.latest_invoice)

    emu.advance(HOUR + 14 * DAY - 1)
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    assert "invoice.overdue" not in events_of(receiver, invoice_id)

    emu.advance(1)  # the due date
    emu.advance(5 * DAY)
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    assert client.v1.invoices.retrieve(invoice_id).status == "open"  # Stripe keeps it open
    assert events_of(receiver, invoice_id).count("invoice.overdue") == 1
    went = [e for e in receiver.events if e["type"] == "customer.subscription.updated"]
    assert [e["data"]["object"]["status"] for e in went] == ["past_due"]
    assert went[0]["data"]["previous_attributes"]["status"] == "active"


def test_paying_the_overdue_invoice_out_of_band_makes_the_subscription_active(
    emu: StripeEmulator, client: stripe.StripeClient, catalog: Prices
) -> None:
    sub = invoiced(client, catalog["pro_yearly"])
    invoice_id = str(sub.latest_invoice)
    emu.advance(31 * DAY)
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"

    paid = emu.pay_out_of_band(invoice_id)

    assert paid["status"] == "paid"
    assert paid["status_transitions"]["paid_at"] == emu.now()
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    told = [e["type"] for e in emu.events() if e["data"]["object"]["id"] == invoice_id]
    assert told[told.index("invoice.overdue") :] == [
        "invoice.overdue",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]


def test_paying_through_the_api_before_the_due_date_sends_no_overdue(
    emu: StripeEmulator, client: stripe.StripeClient, catalog: Prices, receiver: Receiver
) -> None:
    sub = invoiced(client, catalog["pro_yearly"])
    invoice_id = str(sub.latest_invoice)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.pay(invoice_id)  # a draft cannot be paid yet
    emu.advance(10 * DAY)

    client.v1.invoices.pay(invoice_id)
    emu.advance(30 * DAY)

    invoice = client.v1.invoices.retrieve(invoice_id)
    assert (invoice.status, invoice.amount_paid) == ("paid", 30000)
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    assert "invoice.overdue" not in events_of(receiver, invoice_id)


def test_a_renewal_is_sent_too_and_a_later_invoice_not_yet_due_keeps_nothing_past_due(
    emu: StripeEmulator, client: stripe.StripeClient, catalog: Prices, receiver: Receiver
) -> None:
    sub = invoiced(client, catalog["pro_monthly"], days_until_due=45)
    first = str(sub.latest_invoice)
    emu.advance(46 * DAY + HOUR)  # renewed on Feb 1 (due Mar 18), the first overdue since Feb 15
    renewed = client.v1.subscriptions.retrieve(sub.id)
    second = str(renewed.latest_invoice)
    assert second != first and renewed.status == "past_due"
    assert events_of(receiver, second) == ["invoice.created", "invoice.finalized", "invoice.sent"]

    emu.pay_out_of_band(first)

    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    assert client.v1.invoices.retrieve(second).status == "open"


def test_a_price_change_with_an_interval_change_sends_its_invoice(
    emu: StripeEmulator, client: stripe.StripeClient, catalog: Prices, receiver: Receiver
) -> None:
    sub = invoiced(client, catalog["pro_monthly"])
    emu.advance(HOUR)
    item = sub["items"].data[0].id
    client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item, "price": catalog["pro_yearly"].id}],
            "proration_behavior": "create_prorations",
            "days_until_due": 45,
            "invoice_settings": {"custom_fields": [{"name": "PO number", "value": "PO-8"}]},
        },
    )
    changed = client.v1.subscriptions.retrieve(sub.id)
    invoice = client.v1.invoices.retrieve(str(changed.latest_invoice))
    assert (changed.status, changed.days_until_due) == ("active", 45)
    assert (invoice.status, invoice.billing_reason, invoice.attempt_count) == (
        "open",
        "subscription_update",
        0,
    )
    assert invoice.due_date == SENT + 45 * DAY
    assert [(f.name, f.value) for f in invoice.custom_fields or []] == [("PO number", "PO-8")]
    emu.wait_for_webhooks()
    assert events_of(receiver, invoice.id) == ["invoice.created", "invoice.finalized", "invoice.sent"]


def test_the_request_log_shows_what_was_sent(
    emu: StripeEmulator, client: stripe.StripeClient, catalog: Prices
) -> None:
    customer = client.v1.customers.create(
        params={"email": "a@example.com"}, options={"idempotency_key": "customer-key"}
    )
    created = emu.requests("POST", "/v1/customers")
    assert created[-1]["params"] == {"email": "a@example.com"}
    assert created[-1]["idempotency_key"] == "customer-key"
    client.v1.customers.retrieve(customer.id)
    assert [r["method"] for r in emu.requests(path=f"/v1/customers/{customer.id}")] == ["GET"]


def test_canceling_with_invoice_now_sends_the_last_invoice_too(
    emu: StripeEmulator, client: stripe.StripeClient, catalog: Prices
) -> None:
    sub = invoiced(client, catalog["pro_monthly"])
    emu.advance(HOUR + 10 * DAY)
    item = sub["items"].data[0].id
    # a dearer price from now: the difference waits as a pending item for the next invoice
    client.v1.subscriptions.update(
        sub.id, params={"items": [{"id": item, "price": catalog["business_monthly"].id}]}
    )
    ended = client.v1.subscriptions.cancel(sub.id, params={"prorate": False, "invoice_now": True})

    last = client.v1.invoices.retrieve(str(ended.latest_invoice))
    assert ended.status == "canceled"
    assert (last.status, last.collection_method, last.attempt_count) == ("open", "send_invoice", 0)
    assert last.amount_due > 0 and last.due_date == emu.now() + 30 * DAY


def test_an_outage_fails_the_next_requests_and_does_nothing(
    emu: StripeEmulator, client: stripe.StripeClient
) -> None:
    emu.fail_next_requests(1)
    with pytest.raises(stripe.APIError) as err:
        client.v1.customers.create(params={"email": "a@example.com"})
    assert err.value.http_status == 500
    assert client.v1.customers.list().data == []
    assert client.v1.customers.create(params={"email": "a@example.com"}).email == "a@example.com"
