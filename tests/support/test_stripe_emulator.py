"""The Stripe emulator, exercised through the official stripe SDK (no network access)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import stripe

from tests.support.stripe_emulator import StripeEmulator, sign
from tests.support.stripe_emulator.errors import StripeApiError

JAN_1_2026 = 1767225600  # 2026-01-01T00:00:00Z
FEB_1_2026 = JAN_1_2026 + 31 * 86400
DAY = 86400
HALF_JANUARY = 31 * DAY // 2  # exactly half of the first monthly period
SECRET = "whsec_emulator_tests"


class Receiver:
    """A tiny webhook endpoint that verifies signatures and re-fetches subscriptions."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.refetched: list[tuple[str, str]] = []  # (event type, status read back via API)
        self.client: stripe.StripeClient | None = None
        self.status_code = 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    event = stripe.Webhook.construct_event(
                        raw.decode(), self.headers["Stripe-Signature"], SECRET
                    )
                except stripe.SignatureVerificationError:
                    self.send_response(400)
                    self.end_headers()
                    return
                # Calling back into the emulator while it waits for us must not deadlock.
                if event.type.startswith("customer.subscription.") and receiver.client:
                    sub = receiver.client.v1.subscriptions.retrieve(event.data.object.id)
                    with receiver._lock:
                        receiver.refetched.append((event.type, sub.status))
                with receiver._lock:
                    receiver.events.append(json.loads(raw))
                self.send_response(receiver.status_code)
                self.end_headers()
                self.wfile.write(b"{}")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/stripe"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def emu(receiver: Receiver) -> Iterator[StripeEmulator]:
    emulator = StripeEmulator(webhook_url=receiver.url, webhook_secret=SECRET, start_time=JAN_1_2026)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def client(emu: StripeEmulator, receiver: Receiver) -> stripe.StripeClient:
    c = stripe.StripeClient(emu.api_key, base_addresses={"api": emu.base_url}, max_network_retries=0)
    receiver.client = c
    return c


@pytest.fixture
def catalog(client: stripe.StripeClient) -> dict[str, stripe.Price]:
    pro = client.v1.products.create(params={"name": "Pro", "metadata": {"plan": "pro"}})
    biz = client.v1.products.create(params={"name": "Business"})

    def price(product: str, amount: int, interval: str, key: str) -> stripe.Price:
        return client.v1.prices.create(
            params={
                "product": product,
                "unit_amount": amount,
                "currency": "usd",
                "recurring": {"interval": interval},
                "lookup_key": key,
                "metadata": {"plan": key.split("_")[0]},
            }
        )

    return {
        "pro_monthly": price(pro.id, 3000, "month", "pro_monthly"),
        "pro_yearly": price(pro.id, 30000, "year", "pro_yearly"),
        "business_monthly": price(biz.id, 9000, "month", "business_monthly"),
    }


def subscribe(
    emu: StripeEmulator, client: stripe.StripeClient, price: stripe.Price, org: str = "org_1"
) -> stripe.Subscription:
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "https://app.example/billing?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://app.example/billing",
            "client_reference_id": org,
            "customer_email": "owner@example.com",
            "subscription_data": {"metadata": {"org_id": org}},
            "metadata": {"org_id": org},
        }
    )
    done = emu.complete_checkout(session.id)
    return client.v1.subscriptions.retrieve(done["subscription"])


# ------------------------------------------------------------------ catalog & customers


def test_customers_products_prices_roundtrip(client: stripe.StripeClient, catalog) -> None:
    cust = client.v1.customers.create(
        params={"email": "a@example.com", "name": "Acme", "metadata": {"org_id": "o1", "x": "1"}}
    )
    assert cust.id.startswith("cus_") and cust.object == "customer"
    updated = client.v1.customers.update(cust.id, params={"metadata": {"x": ""}, "name": "Acme 2"})
    assert updated.metadata.to_dict() == {"org_id": "o1"} and updated.name == "Acme 2"
    assert [c.id for c in client.v1.customers.list(params={"email": "a@example.com"})] == [cust.id]
    client.v1.customers.tax_ids.create(cust.id, params={"type": "eu_vat", "value": "DE123456789"})
    assert client.v1.customers.tax_ids.list(cust.id).data[0].value == "DE123456789"

    found = client.v1.prices.list(
        params={"lookup_keys": ["pro_monthly", "business_monthly"], "expand": ["data.product"]}
    )
    assert {p.lookup_key for p in found} == {"pro_monthly", "business_monthly"}
    assert {p.product.name for p in found} == {"Pro", "Business"}
    assert found.object == "list" and found.has_more is False

    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.prices.create(
            params={
                "product": catalog["pro_monthly"].product,
                "unit_amount": 1,
                "currency": "usd",
                "lookup_key": "pro_monthly",
            }
        )
    assert err.value.param == "lookup_key"
    moved = client.v1.prices.create(
        params={
            "product": catalog["pro_monthly"].product,
            "unit_amount": 3500,
            "currency": "usd",
            "recurring": {"interval": "month"},
            "lookup_key": "pro_monthly",
            "transfer_lookup_key": True,
        }
    )
    assert client.v1.prices.retrieve(catalog["pro_monthly"].id).lookup_key is None
    assert client.v1.prices.list(params={"lookup_keys": ["pro_monthly"]}).data[0].id == moved.id

    page = client.v1.prices.list(params={"limit": 2})
    assert len(page.data) == 2 and page.has_more
    rest = client.v1.prices.list(params={"limit": 2, "starting_after": page.data[-1].id})
    assert len(rest.data) == 2 and not rest.has_more

    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.retrieve("cus_nope")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"


# ------------------------------------------------------------------ checkout


def test_checkout_completes_into_active_subscription(
    emu: StripeEmulator, client: stripe.StripeClient, catalog, receiver: Receiver
) -> None:
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": catalog["pro_monthly"].id, "quantity": 1}],
            "success_url": "https://app.example/ok?session={CHECKOUT_SESSION_ID}",
            "client_reference_id": "org_42",
            "customer_email": "owner@example.com",
            "subscription_data": {"metadata": {"org_id": "org_42"}},
            "tax_id_collection": {"enabled": True},
            "allow_promotion_codes": True,
            "billing_address_collection": "auto",
        }
    )
    assert session.status == "open" and session.url == f"{emu.base_url}/checkout/{session.id}"
    assert session.id.startswith("cs_")

    emu.complete_checkout(session.id, tax_id=("eu_vat", "FR12345678901"))
    done = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["subscription", "customer"]})
    assert done.status == "complete" and done.payment_status == "paid"
    assert done.client_reference_id == "org_42" and done.customer.email == "owner@example.com"
    sub = done.subscription
    assert sub.status == "active" and sub.metadata.to_dict() == {"org_id": "org_42"}
    item = sub["items"].data[0]
    assert item.id.startswith("si_") and item.price.lookup_key == "pro_monthly"
    assert (item.current_period_start, item.current_period_end) == (JAN_1_2026, FEB_1_2026)
    assert "current_period_end" not in sub  # on the items only since 2025-03-31.basil
    assert sub.billing_cycle_anchor == JAN_1_2026 and sub.start_date == JAN_1_2026

    invoice = client.v1.invoices.retrieve(sub.latest_invoice)
    assert (invoice.status, invoice.billing_reason, invoice.amount_paid) == (
        "paid",
        "subscription_create",
        3000,
    )
    assert invoice.parent.subscription_details.subscription == sub.id
    assert client.v1.customers.tax_ids.list(done.customer.id).data[0].value == "FR12345678901"

    order = receiver.types()
    for earlier, later in [
        ("customer.created", "customer.subscription.created"),
        ("customer.subscription.created", "invoice.paid"),
        ("invoice.paid", "checkout.session.completed"),
    ]:
        assert order.index(earlier) < order.index(later)
    created = next(e for e in receiver.events if e["type"] == "invoice.created")
    assert created["data"]["object"]["status"] == "draft"  # snapshot taken at creation
    completed = next(e for e in receiver.events if e["type"] == "checkout.session.completed")
    assert completed["data"]["object"]["subscription"] == sub.id
    assert completed["livemode"] is False and completed["api_version"]
    # The receiver re-fetched the subscription from inside the webhook: no deadlock.
    assert ("customer.subscription.created", "active") in receiver.refetched


def test_checkout_html_page_pays_and_redirects(
    emu: StripeEmulator, client: stripe.StripeClient, catalog
) -> None:
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": catalog["pro_monthly"].id}],
            "success_url": "https://app.example/ok?session={CHECKOUT_SESSION_ID}",
        }
    )
    page = httpx.get(session.url)
    assert page.status_code == 200 and "id='pay'" in page.text and "Pro" in page.text
    paid = httpx.post(f"{emu.base_url}/checkout/{session.id}/pay", data={"email": "b@x.io"})
    assert paid.status_code == 303
    assert paid.headers["location"] == f"https://app.example/ok?session={session.id}"
    assert client.v1.checkout.sessions.retrieve(session.id).status == "complete"


def test_checkout_payment_failure_leaves_incomplete_subscription(
    emu: StripeEmulator, client: stripe.StripeClient, catalog, receiver: Receiver
) -> None:
    session = client.v1.checkout.sessions.create(
        params={"mode": "subscription", "line_items": [{"price": catalog["pro_monthly"].id}]}
    )
    result = emu.complete_checkout(session.id, payment_fails=True)
    assert result["status"] == "open"
    sub = client.v1.subscriptions.retrieve(result["subscription"])
    assert sub.status == "incomplete"
    assert "invoice.payment_failed" in receiver.types()
    emu.advance(DAY)  # the 23 h window passes
    assert client.v1.subscriptions.retrieve(sub.id).status == "incomplete_expired"


# ------------------------------------------------------------------ proration


def test_mid_period_upgrade_prorates_by_time(
    emu: StripeEmulator, client: stripe.StripeClient, catalog
) -> None:
    sub = subscribe(emu, client, catalog["pro_monthly"])
    emu.advance(HALF_JANUARY)
    item_id = sub["items"].data[0].id
    change = [{"id": item_id, "price": catalog["business_monthly"].id}]

    preview = client.v1.invoices.create_preview(
        params={
            "subscription": sub.id,
            "subscription_details": {"items": change, "proration_date": emu.now()},
        }
    )
    prorations = sorted(
        line.amount for line in preview.lines.data if line.parent.subscription_item_details.proration
    )
    assert prorations == [-1500, 4500]  # half of 30.00 back, half of 90.00 due
    assert client.v1.invoice_items.list(params={"pending": True}).data == []  # not applied

    updated = client.v1.subscriptions.update(
        sub.id, params={"items": change, "proration_behavior": "create_prorations"}
    )
    assert updated["items"].data[0].price.id == catalog["business_monthly"].id
    pending = client.v1.invoice_items.list(params={"pending": True})
    assert sorted(ii.amount for ii in pending) == [-1500, 4500]
    assert all(ii.proration and ii.period.end == FEB_1_2026 for ii in pending)
    assert "Unused time on Pro" in min(pending, key=lambda ii: ii.amount).description
    assert updated.latest_invoice == sub.latest_invoice  # nothing billed yet

    emu.advance(FEB_1_2026 - emu.now())
    renewed = client.v1.subscriptions.retrieve(sub.id)
    renewed_item = renewed["items"].data[0]
    assert renewed_item.current_period_start == FEB_1_2026
    assert renewed_item.current_period_end == FEB_1_2026 + 28 * DAY
    invoice = client.v1.invoices.retrieve(renewed.latest_invoice)
    assert invoice.billing_reason == "subscription_cycle" and invoice.status == "paid"
    assert invoice.amount_paid == -1500 + 4500 + 9000
    assert client.v1.invoice_items.list(params={"pending": True}).data == []


def test_always_invoice_bills_the_proration_now(
    emu: StripeEmulator, client: stripe.StripeClient, catalog, receiver: Receiver
) -> None:
    sub = subscribe(emu, client, catalog["pro_monthly"])
    emu.advance(31 * DAY // 4)  # a quarter in: 3/4 of the period remains
    updated = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": sub["items"].data[0].id, "price": catalog["business_monthly"].id}],
            "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete",
        },
    )
    invoice = client.v1.invoices.retrieve(updated.latest_invoice)
    assert invoice.billing_reason == "subscription_update" and invoice.status == "paid"
    assert sorted(line.amount for line in invoice.lines.data) == [-2250, 6750]
    assert invoice.amount_paid == 4500
    assert updated["items"].data[0].current_period_end == FEB_1_2026  # anchor unchanged
    emu.wait_for_webhooks()
    assert receiver.types()[-1] in ("invoice.paid", "invoice.payment_succeeded")


def test_pending_if_incomplete_keeps_old_price_until_paid(
    emu: StripeEmulator, client: stripe.StripeClient, catalog
) -> None:
    sub = subscribe(emu, client, catalog["pro_monthly"])
    emu.advance(HALF_JANUARY)
    upgrade = [{"id": sub["items"].data[0].id, "price": catalog["business_monthly"].id}]
    emu.fail_next_payment(sub.id)
    with pytest.raises(stripe.CardError):
        client.v1.subscriptions.update(
            sub.id,
            params={
                "items": upgrade,
                "proration_behavior": "always_invoice",
                "payment_behavior": "error_if_incomplete",
            },
        )
    unchanged = client.v1.subscriptions.retrieve(sub.id)
    assert unchanged["items"].data[0].price.id == catalog["pro_monthly"].id
    assert unchanged.latest_invoice == sub.latest_invoice

    emu.fail_next_payment(sub.id)
    updated = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": sub["items"].data[0].id, "price": catalog["business_monthly"].id}],
            "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete",
        },
    )
    assert updated["items"].data[0].price.id == catalog["pro_monthly"].id
    assert updated.pending_update is not None and updated.status == "active"
    paid = client.v1.invoices.pay(updated.latest_invoice)
    assert paid.status == "paid" and paid.amount_paid == 3000
    after = client.v1.subscriptions.retrieve(sub.id)
    assert after["items"].data[0].price.id == catalog["business_monthly"].id
    assert after.pending_update is None
    assert [e["type"] for e in emu.events()].count("customer.subscription.pending_update_applied") == 1


def test_interval_switch_resets_billing_cycle_anchor(
    emu: StripeEmulator, client: stripe.StripeClient, catalog
) -> None:
    sub = subscribe(emu, client, catalog["pro_monthly"])
    emu.advance(HALF_JANUARY)
    switched = client.v1.subscriptions.update(
        sub.id,
        params={"items": [{"id": sub["items"].data[0].id, "price": catalog["pro_yearly"].id}]},
    )
    now = emu.now()
    assert switched.billing_cycle_anchor == now
    item = switched["items"].data[0]
    assert item.current_period_start == now
    assert item.current_period_end == now + 365 * DAY  # 2026-01-16 -> 2027-01-16
    invoice = client.v1.invoices.retrieve(switched.latest_invoice)
    assert invoice.billing_reason == "subscription_update"
    assert invoice.amount_paid == 30000 - 1500  # full year minus unused month


def test_proration_none_and_invalid_combinations(
    emu: StripeEmulator, client: stripe.StripeClient, catalog
) -> None:
    sub = subscribe(emu, client, catalog["pro_monthly"])
    emu.advance(HALF_JANUARY)
    item = sub["items"].data[0].id
    client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item, "price": catalog["business_monthly"].id}],
            "proration_behavior": "none",
        },
    )
    assert client.v1.invoice_items.list(params={"pending": True}).data == []
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.subscriptions.update(
            sub.id,
            params={"billing_cycle_anchor": {"type": "now"}, "proration_date": emu.now()},
        )
    assert err.value.param == "proration_date"


# ------------------------------------------------------------------ lifecycle


def test_renewal_failure_past_due_and_recovery(
    emu: StripeEmulator, client: stripe.StripeClient, catalog, receiver: Receiver
) -> None:
    sub = subscribe(emu, client, catalog["pro_monthly"])
    emu.advance(FEB_1_2026 - emu.now())
    cycle = client.v1.invoices.list(params={"subscription": sub.id}).data[0]
    assert cycle.billing_reason == "subscription_cycle" and cycle.status == "paid"

    emu.fail_next_payment(sub.id)
    emu.advance(28 * DAY)
    failed = client.v1.subscriptions.retrieve(sub.id)
    assert failed.status == "past_due"
    assert "invoice.payment_failed" in receiver.types()
    assert ("customer.subscription.updated", "past_due") in receiver.refetched
    client.v1.invoices.pay(failed.latest_invoice)
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"

    emu.set_subscription_status(sub.id, "unpaid")
    assert client.v1.subscriptions.retrieve(sub.id).status == "unpaid"
    assert emu.events()[-1]["data"]["previous_attributes"] == {"status": "active"}


def test_cancel_at_period_end_and_immediate_cancel(
    emu: StripeEmulator, client: stripe.StripeClient, catalog, receiver: Receiver
) -> None:
    first = subscribe(emu, client, catalog["pro_monthly"], org="a")
    scheduled = client.v1.subscriptions.update(first.id, params={"cancel_at_period_end": True})
    assert scheduled.cancel_at_period_end and scheduled.status == "active"
    emu.advance(FEB_1_2026 - emu.now())
    ended = client.v1.subscriptions.retrieve(first.id)
    assert ended.status == "canceled" and ended.ended_at == FEB_1_2026
    assert "customer.subscription.deleted" in receiver.types()
    assert client.v1.subscriptions.list(params={"customer": ended.customer}).data == []
    assert len(client.v1.subscriptions.list(params={"status": "canceled"}).data) == 1

    second = subscribe(emu, client, catalog["pro_monthly"], org="b")
    emu.advance(14 * DAY)  # half of February
    canceled = client.v1.subscriptions.cancel(second.id, params={"prorate": True, "invoice_now": True})
    assert canceled.status == "canceled"
    final = client.v1.invoices.retrieve(canceled.latest_invoice)
    assert final.total == -1500 and final.amount_due == 0
    assert client.v1.customers.retrieve(canceled.customer).balance == -1500


def test_deleting_a_customer_cancels_its_subscriptions_and_refuses_further_use(
    emu: StripeEmulator, client: stripe.StripeClient, catalog, receiver: Receiver
) -> None:
    sub = subscribe(emu, client, catalog["pro_monthly"])
    deleted = client.v1.customers.delete(sub.customer)
    emu.wait_for_webhooks()
    tombstone = {"id": sub.customer, "object": "customer", "deleted": True}
    assert deleted.to_dict() == tombstone
    # still retrievable, as a tombstone (Stripe docs: Delete a customer)
    assert client.v1.customers.retrieve(sub.customer).to_dict() == tombstone
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled"
    types = receiver.types()
    assert types.index("customer.subscription.deleted") < types.index("customer.deleted")
    assert sub.customer not in [c.id for c in client.v1.customers.list().data]
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(
            params={
                "mode": "subscription",
                "customer": sub.customer,
                "line_items": [{"price": catalog["pro_monthly"].id, "quantity": 1}],
                "success_url": "https://app.example/billing",
            }
        )
    assert refused.value.code == "resource_missing" and refused.value.param == "customer"
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.customers.delete(sub.customer)
    assert again.value.http_status == 404
    # DELETE carries no idempotency key; the emulator counts every cancel it is asked for
    assert emu._engine.subscriptions.cancel_requests == []


def test_portal_session_page_and_hooks(
    emu: StripeEmulator, client: stripe.StripeClient, catalog, receiver: Receiver
) -> None:
    sub = subscribe(emu, client, catalog["pro_monthly"])
    conf = client.v1.billing_portal.configurations.create(
        params={"features": {"customer_update": {"enabled": True, "allowed_updates": ["email", "tax_id"]}}}
    )
    portal = client.v1.billing_portal.sessions.create(
        params={
            "customer": sub.customer,
            "return_url": "https://app.example/billing",
            "configuration": conf.id,
        }
    )
    assert portal.id.startswith("bps_") and portal.url == f"{emu.base_url}/portal/{portal.id}"
    page = httpx.get(portal.url)
    assert sub.id in page.text and "https://app.example/billing" in page.text

    emu.portal_change_price(sub.id, catalog["business_monthly"].id)
    updated = [e for e in emu.events() if e["type"] == "customer.subscription.updated"][-1]
    assert "items" in updated["data"]["previous_attributes"]
    emu.portal_update_customer(sub.customer, email="billing@example.com", tax_id="DE999999999")
    assert client.v1.customers.retrieve(sub.customer).email == "billing@example.com"
    assert {"customer.updated", "customer.tax_id.created"} <= set(receiver.types())


def test_portal_cancel_prorations_refuse_always_invoice(
    emu: StripeEmulator, client: stripe.StripeClient
) -> None:
    param = "features[subscription_cancel][proration_behavior]"

    def features(mode: str, behavior: str) -> dict[str, Any]:
        return {"subscription_cancel": {"enabled": True, "mode": mode, "proration_behavior": behavior}}

    with pytest.raises(stripe.InvalidRequestError) as bad:
        client.v1.billing_portal.configurations.create(
            params={"features": features("immediately", "always_invoice")}
        )
    assert bad.value.http_status == 400 and bad.value.param == param
    assert bad.value.error is not None and bad.value.error.type == "invalid_request_error"
    with pytest.raises(stripe.InvalidRequestError) as later:
        client.v1.billing_portal.configurations.create(
            params={"features": features("at_period_end", "create_prorations")}
        )
    assert later.value.param == param
    assert emu.events("billing_portal.configuration.created") == []

    conf = client.v1.billing_portal.configurations.create(
        params={"features": features("immediately", "none")}
    )
    with pytest.raises(stripe.InvalidRequestError) as update:
        client.v1.billing_portal.configurations.update(
            conf.id, params={"features": features("immediately", "always_invoice")}
        )
    assert update.value.param == param
    updated = client.v1.billing_portal.configurations.update(
        conf.id, params={"features": features("immediately", "create_prorations")}
    )
    assert updated.features.subscription_cancel.proration_behavior == "create_prorations"


def test_api_portal_configurations_are_never_the_default(
    emu: StripeEmulator, client: stripe.StripeClient, catalog
) -> None:
    sub = subscribe(emu, client, catalog["pro_monthly"])
    conf = client.v1.billing_portal.configurations.create(
        params={"features": {"invoice_history": {"enabled": True}}}
    )
    assert conf.is_default is False
    with pytest.raises(stripe.InvalidRequestError) as none:
        client.v1.billing_portal.sessions.create(params={"customer": sub.customer})
    assert "save your customer portal settings" in str(none.value.user_message)

    default = emu.save_dashboard_portal({"invoice_history": {"enabled": True}})
    assert default["is_default"] is True
    assert [c.id for c in client.v1.billing_portal.configurations.list(params={"is_default": True})] == [
        default["id"]
    ]
    assert (
        client.v1.billing_portal.sessions.create(params={"customer": sub.customer}).configuration
        == default["id"]
    )
    named = client.v1.billing_portal.sessions.create(
        params={"customer": sub.customer, "configuration": conf.id}
    )
    assert named.configuration == conf.id


def test_a_portal_session_honours_its_configuration(
    emu: StripeEmulator, client: stripe.StripeClient, catalog
) -> None:
    pro, biz, pro_yearly = catalog["pro_monthly"], catalog["business_monthly"], catalog["pro_yearly"]
    sub = subscribe(emu, client, pro)
    conf = client.v1.billing_portal.configurations.create(
        params={
            "features": {
                "subscription_update": {
                    "enabled": True,
                    "default_allowed_updates": ["price"],
                    "proration_behavior": "always_invoice",
                    "products": [
                        {"product": pro.product, "prices": [pro.id]},
                        {"product": biz.product, "prices": [biz.id]},
                    ],
                },
                "subscription_cancel": {"enabled": True, "mode": "at_period_end"},
            }
        }
    )
    session = client.v1.billing_portal.sessions.create(
        params={"customer": sub.customer, "configuration": conf.id}
    )
    page = httpx.get(session.url)
    assert biz.id in page.text and pro_yearly.id not in page.text

    with pytest.raises(StripeApiError, match="does not offer"):
        emu.portal_session_change_price(session.id, sub.id, pro_yearly.id)
    emu.portal_session_change_price(session.id, sub.id, biz.id)
    changed = client.v1.subscriptions.retrieve(sub.id)
    assert changed["items"].data[0].price.id == biz.id
    # always_invoice: the proration is invoiced at once
    assert client.v1.invoices.retrieve(changed.latest_invoice).billing_reason == "subscription_update"

    emu.portal_session_cancel(session.id, sub.id)
    ending = client.v1.subscriptions.retrieve(sub.id)
    assert ending.status == "active" and ending.cancel_at_period_end is True

    now = client.v1.billing_portal.configurations.create(
        params={"features": {"subscription_cancel": {"enabled": True, "mode": "immediately"}}}
    )
    other = client.v1.billing_portal.sessions.create(
        params={"customer": sub.customer, "configuration": now.id}
    )
    assert "<option" not in httpx.get(other.url).text  # no plan switching in this one
    emu.portal_session_cancel(other.id, sub.id)
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled"


# ------------------------------------------------------------------ webhooks


def test_webhooks_are_signed_like_stripe(
    emu: StripeEmulator, client: stripe.StripeClient, receiver: Receiver
) -> None:
    client.v1.customers.create(params={"email": "sig@example.com"})
    emu.wait_for_webhooks()
    assert receiver.types() == ["customer.created"]  # the receiver rejects bad signatures
    assert emu.delivered[-1]["status_code"] == 200
    payload = json.dumps({"id": "evt_1"})
    header = sign(payload, SECRET, timestamp=1_700_000_000)
    assert header == stripe.WebhookSignature.generate_signature_header(
        payload, SECRET, timestamp=1_700_000_000
    )
    event = emu.events()[-1]
    assert event["id"].startswith("evt_") and event["object"] == "event"
    assert event["request"]["id"].startswith("req_")

    emu.webhook_secret = "whsec_rotated"  # receiver still expects the old secret
    client.v1.customers.create(params={"email": "sig2@example.com"})
    emu.wait_for_webhooks()
    assert emu.delivered[-1]["status_code"] == 400


def test_hold_and_release_reversed_with_duplicates(
    emu: StripeEmulator, client: stripe.StripeClient, receiver: Receiver
) -> None:
    emu.hold_webhooks()
    cust = client.v1.customers.create(params={"email": "a@example.com"})
    client.v1.customers.update(cust.id, params={"email": "b@example.com"})
    emu.wait_for_webhooks()
    assert receiver.events == []
    results = emu.release_webhooks(order="reverse", duplicate=True)
    assert [r.status_code for r in results] == [200] * 4
    assert receiver.types() == ["customer.updated"] * 2 + ["customer.created"] * 2
    assert receiver.events[0]["id"] == receiver.events[1]["id"]
    assert receiver.events[0]["data"]["previous_attributes"] == {"email": "a@example.com"}


def test_dropped_webhooks_stay_listable_and_can_be_redelivered(
    emu: StripeEmulator, client: stripe.StripeClient, receiver: Receiver
) -> None:
    emu.drop_next_webhooks(1)
    cust = client.v1.customers.create(params={"email": "lost@example.com"})
    emu.wait_for_webhooks()
    assert receiver.events == []
    listed = client.v1.events.list(params={"type": "customer.created"})
    assert [e.data.object.id for e in listed] == [cust.id]
    assert client.v1.events.retrieve(listed.data[0].id).type == "customer.created"
    assert client.v1.events.list(params={"type": "customer.*", "limit": 1}).data[0].id == (listed.data[0].id)
    emu.redeliver(listed.data[0].id)
    assert receiver.types() == ["customer.created"]


# ------------------------------------------------------------------ wire validation


def test_unknown_and_invalid_parameters_are_refused(
    emu: StripeEmulator, client: stripe.StripeClient, catalog
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.checkout.sessions.create(
            params={
                "mode": "subscription",
                "line_items": [{"price": catalog["pro_monthly"].id}],
                "subscription_data": {"metadata": {"org_id": "o"}, "foo": "bar"},
            }
        )
    assert unknown.value.code == "parameter_unknown"
    assert unknown.value.param == "subscription_data[foo]"

    auth = {"Authorization": f"Bearer {emu.api_key}"}
    raw = httpx.post(
        f"{emu.base_url}/v1/subscriptions/sub_x",
        data={"proration_behavior": "sometimes"},
        headers=auth,
    )
    assert raw.status_code == 400
    error = raw.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "proration_behavior"
    assert error["code"] == "parameter_invalid_string"

    nested = httpx.post(f"{emu.base_url}/v1/subscriptions/sub_x", data={"items[0][bogus]": "1"}, headers=auth)
    assert nested.json()["error"]["message"] == "Received unknown parameter: items[0][bogus]"
    missing = httpx.post(f"{emu.base_url}/v1/customers/cus_x/tax_ids", data={"value": "DE1"}, headers=auth)
    assert missing.json()["error"]["code"] == "parameter_missing"
    assert missing.json()["error"]["param"] == "type"
    not_int = httpx.post(f"{emu.base_url}/v1/prices", data={"unit_amount": "ten"}, headers=auth)
    assert not_int.json()["error"]["param"] == "unit_amount"

    unauthenticated = httpx.get(f"{emu.base_url}/v1/customers")
    assert unauthenticated.status_code == 401
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient("sk_test_wrong", base_addresses={"api": emu.base_url}).v1.customers.list()


def test_idempotency_keys(client: stripe.StripeClient) -> None:
    first = client.v1.customers.create(params={"email": "i@example.com"}, options={"idempotency_key": "k-1"})
    again = client.v1.customers.create(params={"email": "i@example.com"}, options={"idempotency_key": "k-1"})
    assert first.id == again.id
    assert len(client.v1.customers.list().data) == 1
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create(params={"email": "other@example.com"}, options={"idempotency_key": "k-1"})
