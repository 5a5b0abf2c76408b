"""The Stripe emulator's money side, through the official SDK: cards and 3-D Secure,
PaymentIntents and invoice payments, the hosted invoice page and PDF, credit notes and
refunds, and listing invoices."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import httpx
import pytest
import stripe

from tests.support.stripe_emulator import StripeEmulator
from tests.support.stripe_emulator.errors import StripeApiError
from tests.support.test_stripe_emulator import DAY, FEB_1_2026, JAN_1_2026

PASSES = "4242424242424242"
DECLINES = "4000000000000341"  # attaches, every charge declined
UNLESS_SET_UP = "4000002500003155"  # authentication unless set up for off-session use
ALWAYS_AUTH = "4000002760003184"  # authentication on every payment

T = TypeVar("T")


def ref(field: object) -> str:
    """The id in a field the SDK types as `id | expanded object | None`."""
    assert isinstance(field, str), field
    return field


def present(value: T | None) -> T:
    assert value is not None
    return value


@pytest.fixture
def emu() -> Iterator[StripeEmulator]:
    # No webhook endpoint: every event is still recorded and listed by emu.events().
    emulator = StripeEmulator(start_time=JAN_1_2026)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def client(emu: StripeEmulator) -> stripe.StripeClient:
    return stripe.StripeClient(emu.api_key, base_addresses={"api": emu.base_url}, max_network_retries=0)


@pytest.fixture
def prices(client: stripe.StripeClient) -> dict[str, stripe.Price]:
    def price(name: str, amount: int) -> stripe.Price:
        return client.v1.prices.create(
            params={
                "product_data": {"name": name},
                "unit_amount": amount,
                "currency": "usd",
                "recurring": {"interval": "month"},
            }
        )

    return {"pro": price("Pro", 3000), "business": price("Business", 9000)}


def checkout(
    emu: StripeEmulator, client: stripe.StripeClient, price: stripe.Price, card: str = PASSES
) -> stripe.Subscription:
    session = client.v1.checkout.sessions.create(
        params={"mode": "subscription", "line_items": [{"price": price.id, "quantity": 1}]}
    )
    done = emu.complete_checkout(session.id, card=card)
    return client.v1.subscriptions.retrieve(done["subscription"])


def api_subscription(
    client: stripe.StripeClient, customer_id: str, price: stripe.Price, **params: Any
) -> stripe.Subscription:
    body: Any = {"customer": customer_id, "items": [{"price": price.id}], **params}
    return client.v1.subscriptions.create(params=body)


def customer_with_card(emu: StripeEmulator, client: stripe.StripeClient, card: str, **kw: bool) -> str:
    cust = client.v1.customers.create(params={"email": "owner@example.com"})
    emu.set_card(cust.id, card, **kw)
    return cust.id


def renew(emu: StripeEmulator, client: stripe.StripeClient, sub_id: str) -> stripe.Invoice:
    """Advance to the end of the current period; the renewal invoice."""
    item = client.v1.subscriptions.retrieve(sub_id)["items"].data[0]
    emu.advance(item.current_period_end - emu.now())
    return client.v1.invoices.retrieve(ref(client.v1.subscriptions.retrieve(sub_id).latest_invoice))


def intent_of(client: stripe.StripeClient, invoice_id: str) -> stripe.PaymentIntent:
    payments = client.v1.invoice_payments.list(params={"invoice": invoice_id})
    [payment] = payments.data
    return client.v1.payment_intents.retrieve(ref(payment.payment.payment_intent))


def types_since(emu: StripeEmulator, start: int) -> list[str]:
    return [e["type"] for e in emu.events()[start:]]


# ------------------------------------------------------------------ cards and payments


def test_a_card_on_file_pays_and_its_payment_intent_is_reached_through_the_invoice_payment(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    cust_id = client.v1.customers.create(params={"email": "a@example.com"}).id
    pm = emu.set_card(cust_id, PASSES)
    assert pm["id"].startswith("pm_") and pm["card"]["last4"] == "4242" and pm["customer"] == cust_id
    settings = present(client.v1.customers.retrieve(cust_id).invoice_settings)
    assert settings.default_payment_method == pm["id"]
    assert present(client.v1.payment_methods.retrieve(pm["id"]).card).brand == "visa"

    sub = api_subscription(client, cust_id, prices["pro"])
    assert sub.status == "active"
    invoice = client.v1.invoices.retrieve(ref(sub.latest_invoice))
    assert invoice.status == "paid" and "payments" not in invoice  # only with expand[]=payments

    [payment] = client.v1.invoice_payments.list(params={"invoice": invoice.id}).data
    assert payment.id.startswith("inpay_") and payment.is_default and payment.status == "paid"
    assert (payment.amount_requested, payment.amount_paid, payment.currency) == (3000, 3000, "usd")
    assert payment.payment.type == "payment_intent" and payment.status_transitions.paid_at == emu.now()
    assert client.v1.invoice_payments.retrieve(payment.id).invoice == invoice.id

    intent = client.v1.payment_intents.retrieve(ref(payment.payment.payment_intent))
    assert intent.status == "succeeded" and intent.amount_received == 3000
    assert intent.payment_method == pm["id"] and intent.last_payment_error is None
    assert present(invoice.confirmation_secret).client_secret == intent.client_secret
    charge = client.v1.charges.retrieve(ref(intent.latest_charge))
    assert charge.paid and charge.amount == 3000 and charge.payment_intent == intent.id

    expanded = client.v1.invoices.retrieve(
        invoice.id, params={"expand": ["payments.data.payment.payment_intent"]}
    )
    expanded_intent = present(expanded.payments).data[0].payment.payment_intent
    assert isinstance(expanded_intent, stripe.PaymentIntent) and expanded_intent.status == "succeeded"
    by_intent = client.v1.invoice_payments.list(
        params={"payment": {"type": "payment_intent", "payment_intent": intent.id}}
    )
    assert [p.id for p in by_intent] == [payment.id]


def test_a_card_declined_after_attaching_leaves_the_first_invoice_open_with_the_decline(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    cust_id = customer_with_card(emu, client, DECLINES)
    start = len(emu.events())
    sub = api_subscription(client, cust_id, prices["pro"])
    assert sub.status == "incomplete"
    invoice = client.v1.invoices.retrieve(ref(sub.latest_invoice))
    assert (invoice.status, invoice.attempted, invoice.amount_paid) == ("open", True, 0)
    intent = intent_of(client, invoice.id)
    assert intent.status == "requires_payment_method" and intent.next_action is None
    error = present(intent.last_payment_error)
    assert (error.type, error.code, error.decline_code) == ("card_error", "card_declined", "generic_decline")
    assert client.v1.charges.retrieve(ref(error.charge)).status == "failed"
    assert client.v1.invoice_payments.list(params={"invoice": invoice.id}).data[0].status == "open"
    events = types_since(emu, start)
    assert "invoice.payment_failed" in events and "invoice.payment_action_required" not in events

    with pytest.raises(stripe.CardError) as declined:
        api_subscription(client, cust_id, prices["pro"], payment_behavior="error_if_incomplete")
    assert declined.value.http_status == 402 and declined.value.code == "card_declined"


def test_fail_next_payment_still_declines_a_renewal_on_a_good_card(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    sub = checkout(emu, client, prices["pro"])
    emu.fail_next_payment(sub.id)
    renewal = renew(emu, client, sub.id)
    assert renewal.status == "open" and client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    intent = intent_of(client, renewal.id)
    assert (
        intent.status == "requires_payment_method"
        and present(intent.last_payment_error).code == "card_declined"
    )
    # the same PaymentIntent is confirmed again when the invoice is paid
    paid = client.v1.invoices.pay(renewal.id)
    assert paid.status == "paid" and intent_of(client, renewal.id).id == intent.id
    assert intent_of(client, renewal.id).status == "succeeded"


# ------------------------------------------------------------------ 3-D Secure


def test_a_card_needing_authentication_leaves_the_invoice_open_until_the_customer_confirms(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    cust_id = customer_with_card(emu, client, UNLESS_SET_UP)  # not set up for off-session use
    start = len(emu.events())
    sub = api_subscription(client, cust_id, prices["pro"])
    assert sub.status == "incomplete"
    invoice = client.v1.invoices.retrieve(ref(sub.latest_invoice))
    assert (invoice.status, invoice.attempted, invoice.attempt_count) == ("open", True, 1)
    intent = intent_of(client, invoice.id)
    assert intent.status == "requires_action" and intent.last_payment_error is None
    assert present(intent.next_action).type == "use_stripe_sdk"
    events = types_since(emu, start)
    assert events.index("invoice.payment_failed") < events.index("invoice.payment_action_required")

    page = httpx.get(present(invoice.hosted_invoice_url))
    assert (
        page.status_code == 200 and "id='authenticate'" in page.text and present(invoice.number) in page.text
    )

    paid = emu.complete_invoice_authentication(invoice.id)
    assert paid["status"] == "paid" and paid["amount_paid"] == 3000
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    assert intent_of(client, invoice.id).status == "succeeded"
    assert "invoice.paid" in types_since(emu, start)
    with pytest.raises(StripeApiError):  # nothing left to authenticate
        emu.complete_invoice_authentication(invoice.id)


def test_a_card_set_up_for_off_session_use_renews_without_authentication(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    cust_id = customer_with_card(emu, client, UNLESS_SET_UP, set_up_off_session=True)
    sub = api_subscription(client, cust_id, prices["pro"])
    assert sub.status == "active"
    assert renew(emu, client, sub.id).status == "paid"

    # Checkout saves its card for off-session use too, as the subscription's default
    via_checkout = checkout(emu, client, prices["pro"], card=UNLESS_SET_UP)
    assert via_checkout.status == "active" and ref(via_checkout.default_payment_method).startswith("pm_")
    assert renew(emu, client, via_checkout.id).status == "paid"


def test_a_card_that_always_authenticates_makes_the_renewal_past_due_until_paid_on_the_hosted_page(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    sub = checkout(emu, client, prices["pro"], card=ALWAYS_AUTH)
    assert sub.status == "active"  # the customer authenticated on the Checkout page
    start = len(emu.events())
    renewal = renew(emu, client, sub.id)
    assert (renewal.status, renewal.attempted) == ("open", True)
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    assert intent_of(client, renewal.id).status == "requires_action"
    assert "invoice.payment_action_required" in types_since(emu, start)

    clicked = httpx.post(f"{emu.base_url}/invoice/{renewal.id}/pay")
    assert clicked.status_code == 303 and clicked.headers["location"] == f"/invoice/{renewal.id}"
    assert client.v1.invoices.retrieve(renewal.id).status == "paid"
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    assert "id='paid'" in httpx.get(present(renewal.hosted_invoice_url)).text


def test_stripe_pages_let_the_customer_authenticate_checkout_and_portal_alike(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    def session() -> stripe.checkout.Session:
        return client.v1.checkout.sessions.create(
            params={"mode": "subscription", "line_items": [{"price": prices["pro"].id}]}
        )

    first = session()
    paid = httpx.post(f"{emu.base_url}/checkout/{first.id}/pay", data={"card": ALWAYS_AUTH})
    assert paid.status_code == 200 and "id='done'" in paid.text  # no success_url: a thank-you page
    sub_id = ref(client.v1.checkout.sessions.retrieve(first.id).subscription)

    emu.portal_change_price(sub_id, prices["business"].id, proration_behavior="always_invoice")
    upgraded = client.v1.subscriptions.retrieve(sub_id)
    assert upgraded["items"].data[0].price.id == prices["business"].id
    assert client.v1.invoices.retrieve(ref(upgraded.latest_invoice)).status == "paid"

    declined = httpx.post(f"{emu.base_url}/checkout/{session().id}/pay", data={"card": DECLINES})
    assert declined.status_code == 402
    unknown = httpx.post(f"{emu.base_url}/checkout/{session().id}/pay", data={"card": "4000000000000000"})
    assert unknown.status_code == 400


def test_a_new_card_replaces_the_checkout_card_on_the_subscription_too(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    sub = checkout(emu, client, prices["pro"])
    checkout_card = ref(sub.default_payment_method)
    customer = ref(sub.customer)
    assert present(client.v1.customers.retrieve(customer).invoice_settings).default_payment_method is None

    pm = emu.set_card(customer, ALWAYS_AUTH)
    assert pm["id"] != checkout_card
    assert client.v1.subscriptions.retrieve(sub.id).default_payment_method == pm["id"]
    renewal = renew(emu, client, sub.id)
    assert renewal.status == "open" and intent_of(client, renewal.id).payment_method == pm["id"]


def test_a_pending_upgrade_waits_for_authentication_and_applies_once_confirmed(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    sub = checkout(emu, client, prices["pro"], card=ALWAYS_AUTH)
    emu.advance(31 * DAY // 2)
    updated = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": sub["items"].data[0].id, "price": prices["business"].id}],
            "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete",
        },
    )
    assert updated["items"].data[0].price.id == prices["pro"].id  # the old price stays
    assert updated.pending_update is not None and updated.status == "active"
    invoice = client.v1.invoices.retrieve(ref(updated.latest_invoice))
    assert invoice.status == "open" and invoice.billing_reason == "subscription_update"
    assert intent_of(client, invoice.id).status == "requires_action"

    emu.complete_invoice_authentication(invoice.id)
    after = client.v1.subscriptions.retrieve(sub.id)
    assert after["items"].data[0].price.id == prices["business"].id and after.pending_update is None
    assert [e["type"] for e in emu.events()].count("customer.subscription.pending_update_applied") == 1


def test_error_if_incomplete_answers_402_when_the_bank_asks_for_authentication(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    sub = checkout(emu, client, prices["pro"], card=ALWAYS_AUTH)
    with pytest.raises(stripe.CardError) as err:
        client.v1.subscriptions.update(
            sub.id,
            params={
                "items": [{"id": sub["items"].data[0].id, "price": prices["business"].id}],
                "proration_behavior": "always_invoice",
                "payment_behavior": "error_if_incomplete",
            },
        )
    assert err.value.http_status == 402 and err.value.code == "subscription_payment_intent_requires_action"
    unchanged = client.v1.subscriptions.retrieve(sub.id)
    assert unchanged["items"].data[0].price.id == prices["pro"].id
    assert ref(unchanged.latest_invoice) == ref(sub.latest_invoice)

    cust_id = customer_with_card(emu, client, ALWAYS_AUTH)
    with pytest.raises(stripe.CardError) as created:
        api_subscription(client, cust_id, prices["pro"], payment_behavior="error_if_incomplete")
    assert created.value.code == "subscription_payment_intent_requires_action"
    assert client.v1.subscriptions.list(params={"customer": cust_id, "status": "all"}).data == []


def test_paying_through_the_api_cannot_authenticate_but_a_new_card_on_file_pays(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    cust_id = customer_with_card(emu, client, ALWAYS_AUTH)
    sub = api_subscription(client, cust_id, prices["pro"])
    with pytest.raises(stripe.CardError) as err:
        client.v1.invoices.pay(ref(sub.latest_invoice))
    assert err.value.http_status == 402 and err.value.code == "invoice_payment_intent_requires_action"
    assert client.v1.invoices.retrieve(ref(sub.latest_invoice)).status == "open"

    other = customer_with_card(emu, client, PASSES)
    foreign = ref(present(client.v1.customers.retrieve(other).invoice_settings).default_payment_method)
    with pytest.raises(stripe.InvalidRequestError) as not_theirs:
        client.v1.invoices.pay(ref(sub.latest_invoice), params={"payment_method": foreign})
    assert not_theirs.value.param == "payment_method"

    emu.set_card(cust_id, PASSES)
    paid = client.v1.invoices.pay(ref(sub.latest_invoice))
    assert paid.status == "paid" and client.v1.subscriptions.retrieve(sub.id).status == "active"


# ------------------------------------------------------------------ hosted invoice page and PDF


def test_the_hosted_invoice_page_shows_a_decline_and_pays_with_a_new_card(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    sub = checkout(emu, client, prices["pro"], card=DECLINES)
    invoice = client.v1.invoices.retrieve(ref(sub.latest_invoice))
    assert invoice.hosted_invoice_url == f"{emu.base_url}/invoice/{invoice.id}"
    page = httpx.get(present(invoice.hosted_invoice_url))
    assert "id='payment-error'" in page.text and "Your card was declined." in page.text
    assert "30.00 USD" in page.text

    again = httpx.post(f"{emu.base_url}/invoice/{invoice.id}/pay")  # the card on file declines
    assert again.status_code == 402 and client.v1.invoices.retrieve(invoice.id).status == "open"
    paid = httpx.post(f"{emu.base_url}/invoice/{invoice.id}/pay", data={"card": PASSES})
    assert paid.status_code == 303
    assert client.v1.invoices.retrieve(invoice.id).status == "paid"
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    assert httpx.get(f"{emu.base_url}/invoice/in_nope").status_code == 404


def test_the_invoice_pdf_is_a_pdf_naming_the_invoice(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    sub = checkout(emu, client, prices["pro"])
    invoice = client.v1.invoices.retrieve(ref(sub.latest_invoice))
    assert invoice.invoice_pdf == f"{emu.base_url}/invoice/{invoice.id}/pdf"
    pdf = httpx.get(invoice.invoice_pdf)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and present(invoice.number).encode() in pdf.content
    assert pdf.content.rstrip().endswith(b"%%EOF")


# ------------------------------------------------------------------ credit notes and refunds


def test_a_credit_note_refunds_part_of_a_paid_invoice_to_the_card(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    sub = checkout(emu, client, prices["pro"])
    invoice = client.v1.invoices.retrieve(ref(sub.latest_invoice))
    start = len(emu.events())
    note = client.v1.credit_notes.create(
        params={
            "invoice": invoice.id,
            "amount": 1000,
            "refund_amount": 1000,
            "reason": "order_change",
            "memo": "Downgrade",
        }
    )
    assert note.id.startswith("cn_") and note.status == "issued" and note.number == f"{invoice.number}-CN-01"
    assert (note.total, note.pre_payment_amount, note.post_payment_amount) == (1000, 0, 1000)
    assert (note.type, note.reason, note.memo, note.customer) == (
        "post_payment",
        "order_change",
        "Downgrade",
        ref(invoice.customer),
    )
    [refund_ref] = note.refunds
    refund = client.v1.refunds.retrieve(ref(refund_ref.refund))
    intent = intent_of(client, invoice.id)
    assert (refund.amount, refund.status, refund.charge) == (1000, "succeeded", ref(intent.latest_charge))
    assert refund.payment_intent == intent.id
    charge = client.v1.charges.retrieve(ref(intent.latest_charge))
    assert (charge.amount_refunded, charge.refunded) == (1000, False)
    credited = client.v1.invoices.retrieve(invoice.id)
    assert (credited.post_payment_credit_notes_amount, credited.pre_payment_credit_notes_amount) == (1000, 0)
    assert credited.amount_paid == 3000 and credited.status == "paid"
    assert types_since(emu, start) == ["credit_note.created", "refund.created", "charge.refunded"]

    assert client.v1.credit_notes.retrieve(note.id).total == 1000
    assert [n.id for n in client.v1.credit_notes.list(params={"invoice": invoice.id})] == [note.id]
    assert [n.id for n in client.v1.credit_notes.list(params={"customer": ref(invoice.customer)})] == [
        note.id
    ]
    assert client.v1.credit_notes.list(params={"customer": "cus_other"}).data == []
    assert httpx.get(note.pdf).content.startswith(b"%PDF-")

    # what is left: 2000 to credit, 2000 to refund
    rest = client.v1.credit_notes.create(
        params={"invoice": invoice.id, "amount": 2000, "refund_amount": 2000, "reason": "duplicate"}
    )
    assert rest.number.endswith("-CN-02")
    assert client.v1.charges.retrieve(ref(intent.latest_charge)).refunded is True


def test_credit_notes_refuse_what_stripe_refuses(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    sub = checkout(emu, client, prices["pro"])
    invoice_id = ref(sub.latest_invoice)

    def refused(**params: Any) -> stripe.InvalidRequestError:
        with pytest.raises(stripe.InvalidRequestError) as err:
            body: Any = {"invoice": invoice_id, **params}
            client.v1.credit_notes.create(params=body)
        return err.value

    line = client.v1.invoices.retrieve(invoice_id).lines.data[0].id
    both = refused(
        amount=100,
        refund_amount=100,
        lines=[{"type": "invoice_line_item", "invoice_line_item": line, "amount": 100}],
    )
    assert both.code == "parameters_exclusive"
    assert refused().code == "parameter_missing"
    assert refused(amount=100).param == "out_of_band_amount"  # a paid invoice: say where it goes
    assert refused(amount=100, refund_amount=50, credit_amount=100).param is None  # 150 != 100
    assert refused(amount=100, refund_amount=100, reason="changed_mind").param == "reason"
    assert refused(amount=3001, out_of_band_amount=3001).param == "amount"

    client.v1.credit_notes.create(params={"invoice": invoice_id, "amount": 2500, "refund_amount": 2500})
    assert refused(amount=600, refund_amount=600).param == "amount"  # only 500 left to credit

    # an invoice that was voided (the incomplete subscription expired) takes no credit note
    cust_id = customer_with_card(emu, client, DECLINES)
    expired = api_subscription(client, cust_id, prices["pro"])
    emu.advance(DAY)
    assert client.v1.invoices.retrieve(ref(expired.latest_invoice)).status == "void"
    with pytest.raises(stripe.InvalidRequestError) as void:
        client.v1.credit_notes.create(params={"invoice": ref(expired.latest_invoice), "amount": 100})
    assert void.value.param == "invoice"


def test_a_refund_cannot_exceed_what_was_paid_and_not_yet_refunded(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    cust_id = client.v1.customers.create(params={"email": "c@example.com", "balance": -1000}).id
    emu.set_card(cust_id, PASSES)
    sub = api_subscription(client, cust_id, prices["pro"])
    invoice = client.v1.invoices.retrieve(ref(sub.latest_invoice))
    assert (invoice.total, invoice.amount_paid) == (3000, 2000)  # 1000 of credit was applied
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 2500, "refund_amount": 2500})
    assert err.value.param == "refund_amount"
    note = client.v1.credit_notes.create(
        params={"invoice": invoice.id, "amount": 2500, "refund_amount": 2000, "credit_amount": 500}
    )
    assert note.total == 2500 and len(note.refunds) == 1


def test_an_invoice_paid_partly_from_the_balance_charges_the_card_only_the_rest(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    cust_id = client.v1.customers.create(params={"email": "c@example.com", "balance": -1000}).id
    emu.set_card(cust_id, PASSES)
    sub = api_subscription(client, cust_id, prices["pro"])
    invoice = client.v1.invoices.retrieve(ref(sub.latest_invoice))
    assert (invoice.total, invoice.starting_balance, invoice.ending_balance) == (3000, -1000, 0)
    assert (invoice.amount_due, invoice.amount_paid, invoice.status) == (2000, 2000, "paid")
    intent = intent_of(client, invoice.id)
    charge = client.v1.charges.retrieve(ref(intent.latest_charge))
    assert intent.amount == intent.amount_received == charge.amount == invoice.amount_paid
    assert client.v1.customers.retrieve(cust_id).balance == 0  # the credit was spent


def test_a_refund_of_more_than_the_charge_is_refused_as_stripe_refuses_it(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    cust_id = client.v1.customers.create(params={"email": "c@example.com", "balance": -1000}).id
    emu.set_card(cust_id, PASSES)
    sub = api_subscription(client, cust_id, prices["pro"])
    invoice = client.v1.invoices.retrieve(ref(sub.latest_invoice))
    charge_id = ref(intent_of(client, invoice.id).latest_charge)

    def refused(**params: Any) -> stripe.InvalidRequestError:
        with pytest.raises(stripe.InvalidRequestError) as err:
            body: Any = {"charge": charge_id, **params}
            client.v1.refunds.create(params=body)
        return err.value

    # the invoice's total (3000) was never charged: 1000 of it came from the balance
    over = refused(amount=invoice.total)
    assert (over.http_status, over.param, over.code) == (400, "amount", None)
    assert over.user_message == "Refund amount ($30.00) is greater than charge amount ($20.00)"
    assert refused(amount=0).code == "parameter_invalid_integer"
    assert refused(reason="changed_mind").param == "reason"
    assert client.v1.charges.retrieve(charge_id).amount_refunded == 0  # nothing moved

    start = len(emu.events())
    part = client.v1.refunds.create(
        params={"charge": charge_id, "amount": 500, "reason": "requested_by_customer"}
    )
    assert (part.amount, part.status, part.reason, part.charge) == (
        500,
        "succeeded",
        "requested_by_customer",
        charge_id,
    )
    assert types_since(emu, start) == ["refund.created", "charge.refunded"]
    again = refused(amount=invoice.amount_paid)
    assert again.user_message == "Refund amount ($20.00) is greater than unrefunded amount on charge ($15.00)"
    # the credit note path obeys the same limit
    with pytest.raises(stripe.InvalidRequestError) as note:
        client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 1600, "refund_amount": 1600})
    assert note.value.param == "refund_amount"

    # no amount: what is left, here through the PaymentIntent
    rest = client.v1.refunds.create(params={"payment_intent": intent_of(client, invoice.id).id})
    assert rest.amount == invoice.amount_paid - 500
    charge = client.v1.charges.retrieve(charge_id)
    assert (charge.amount_refunded, charge.refunded) == (invoice.amount_paid, True)
    assert client.v1.refunds.retrieve(rest.id).charge == charge_id
    assert refused(amount=1).code == "charge_already_refunded"


def test_credit_amount_goes_to_the_customer_balance_and_the_next_invoice_spends_it(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    sub = checkout(emu, client, prices["pro"])
    invoice = client.v1.invoices.retrieve(ref(sub.latest_invoice))
    note = client.v1.credit_notes.create(
        params={
            "invoice": invoice.id,
            "amount": 1000,
            "credit_amount": 1000,
            "reason": "product_unsatisfactory",
        }
    )
    assert ref(note.customer_balance_transaction).startswith("cbtxn_") and note.refunds == []
    assert client.v1.customers.retrieve(ref(invoice.customer)).balance == -1000  # negative = credit
    renewal = renew(emu, client, sub.id)
    assert (renewal.total, renewal.amount_due, renewal.amount_paid) == (3000, 2000, 2000)
    assert client.v1.customers.retrieve(ref(invoice.customer)).balance == 0


def test_a_credit_note_on_an_open_invoice_lowers_what_is_due(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    sub = checkout(emu, client, prices["pro"], card=DECLINES)
    invoice = client.v1.invoices.retrieve(ref(sub.latest_invoice))
    assert (invoice.status, invoice.amount_due) == ("open", 3000)
    note = client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 500})
    assert (note.pre_payment_amount, note.post_payment_amount, note.type) == (500, 0, "pre_payment")
    lowered = client.v1.invoices.retrieve(invoice.id)
    assert (lowered.amount_due, lowered.amount_remaining, lowered.pre_payment_credit_notes_amount) == (
        2500,
        2500,
        500,
    )
    assert intent_of(client, invoice.id).amount == 2500  # the payment follows amount_remaining
    # nothing was paid, so nothing can go back to the card
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 100, "refund_amount": 100})

    # crediting a line for the rest leaves nothing due: the invoice is paid without a charge
    line = lowered.lines.data[0]
    rest = client.v1.credit_notes.create(
        params={
            "invoice": invoice.id,
            "lines": [{"type": "invoice_line_item", "invoice_line_item": line.id, "amount": 2500}],
        }
    )
    assert rest.lines.data[0].invoice_line_item == line.id and rest.total == 2500
    settled = client.v1.invoices.retrieve(invoice.id)
    assert (settled.status, settled.amount_paid, settled.amount_remaining) == ("paid", 0, 0)
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    assert intent_of(client, invoice.id).status == "canceled"


def test_credit_note_lines_by_quantity_and_custom_lines(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    cust_id = customer_with_card(emu, client, PASSES)
    sub = client.v1.subscriptions.create(
        params={"customer": cust_id, "items": [{"price": prices["pro"].id, "quantity": 3}]}
    )
    invoice = client.v1.invoices.retrieve(ref(sub.latest_invoice))
    line = invoice.lines.data[0]
    note = client.v1.credit_notes.create(
        params={
            "invoice": invoice.id,
            "lines": [
                {"type": "invoice_line_item", "invoice_line_item": line.id, "quantity": 2},
                {"type": "custom_line_item", "description": "Goodwill", "unit_amount": 500, "quantity": 1},
            ],
            "refund_amount": 6500,
        }
    )
    assert [(li.type, li.amount) for li in note.lines.data] == [
        ("invoice_line_item", 6000),
        ("custom_line_item", 500),
    ]
    assert note.total == 6500
    with pytest.raises(stripe.InvalidRequestError) as err:  # only one unit of the line is left
        client.v1.credit_notes.create(
            params={
                "invoice": invoice.id,
                "lines": [{"type": "invoice_line_item", "invoice_line_item": line.id, "quantity": 2}],
                "refund_amount": 6000,
            }
        )
    assert err.value.param == "lines[0][amount]"


def test_a_credit_note_preview_changes_nothing(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    sub = checkout(emu, client, prices["pro"])
    preview = client.v1.credit_notes.preview(
        params={"invoice": ref(sub.latest_invoice), "amount": 1200, "refund_amount": 1200}
    )
    assert (preview.total, preview.post_payment_amount) == (1200, 1200)
    assert client.v1.credit_notes.list().data == []
    assert client.v1.invoices.retrieve(ref(sub.latest_invoice)).post_payment_credit_notes_amount == 0


def test_a_retried_credit_note_request_with_its_idempotency_key_refunds_once(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    sub = checkout(emu, client, prices["pro"])
    params: Any = {"invoice": ref(sub.latest_invoice), "amount": 1000, "refund_amount": 1000}
    first = client.v1.credit_notes.create(params=params, options={"idempotency_key": "refund-1"})
    again = client.v1.credit_notes.create(params=params, options={"idempotency_key": "refund-1"})
    assert first.id == again.id and len(client.v1.credit_notes.list().data) == 1
    charge = client.v1.charges.retrieve(ref(intent_of(client, ref(sub.latest_invoice)).latest_charge))
    assert charge.amount_refunded == 1000


# ------------------------------------------------------------------ listing invoices


def test_invoices_list_filters_and_pages_newest_first(
    emu: StripeEmulator, client: stripe.StripeClient, prices: dict[str, stripe.Price]
) -> None:
    sub = checkout(emu, client, prices["pro"])
    other = checkout(emu, client, prices["business"])
    emu.advance(FEB_1_2026 - emu.now())  # both renew
    emu.fail_next_payment(sub.id)
    renew(emu, client, sub.id)  # March: declined, open
    customer = ref(sub.customer)

    mine = client.v1.invoices.list(params={"customer": customer})
    assert [i.billing_reason for i in mine] == [
        "subscription_cycle",
        "subscription_cycle",
        "subscription_create",
    ]
    assert [i.created for i in mine] == sorted((i.created for i in mine), reverse=True)
    assert {i.id for i in client.v1.invoices.list(params={"subscription": other.id})}.isdisjoint(
        {i.id for i in mine}
    )
    assert [i.status for i in client.v1.invoices.list(params={"customer": customer, "status": "open"})] == [
        "open"
    ]

    page = client.v1.invoices.list(params={"customer": customer, "limit": 2})
    assert len(page.data) == 2 and page.has_more
    rest = client.v1.invoices.list(
        params={"customer": customer, "limit": 2, "starting_after": page.data[-1].id}
    )
    assert [i.id for i in rest] == [mine.data[2].id] and not rest.has_more

    first = mine.data[-1]
    assert first.number and first.currency == "usd" and first.total_taxes == []
    assert (first.total, first.amount_due, first.amount_paid, first.status) == (3000, 3000, 3000, "paid")
    assert (first.period_start, first.period_end) == (JAN_1_2026, JAN_1_2026)
    assert present(first.hosted_invoice_url).endswith(f"/invoice/{first.id}")
    assert present(first.invoice_pdf).endswith(f"/invoice/{first.id}/pdf")
