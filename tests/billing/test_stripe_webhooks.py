"""Stripe webhooks: verified, applied once per event id, converging whatever the order."""

from __future__ import annotations

import json
import time

import httpx
from sqlalchemy import select

from modelux_server.models import Notification
from tests.billing.stripe_world import DAY, WEBHOOK_SECRET, StripeWorld
from tests.support.stripe_emulator import sign


def _post(world: StripeWorld, payload: str, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return httpx.post(world.webhook_url, content=payload.encode(), headers=headers)


def _notifications(world: StripeWorld, org_id: str, kind: str) -> list[Notification]:
    async def read() -> list[Notification]:
        async with world.rt.db.session() as session:
            stmt = select(Notification).where(Notification.org_id == org_id, Notification.kind == kind)
            return list((await session.execute(stmt)).scalars())

    return world.server.call(read())


def test_past_due_keeps_the_plan_in_grace_and_queues_the_dunning_email(world: StripeWorld) -> None:
    org = world.org()
    sub_id = world.subscribe(org, "pro")
    world.emu.fail_next_payment(sub_id)
    world.advance(31 * DAY)  # renewal on 2026-02-10: the card is declined
    assert world.stripe.v1.subscriptions.retrieve(sub_id).status == "past_due"
    grace = world.billing(org)
    assert grace["plan"]["id"] == "pro" and grace["status"] == "past_due"
    assert grace["meters"]["monthly_requests"]["limit"] == 250_000
    [email] = _notifications(world, org.id, "payment_failed")
    assert email.recipients == [org.owner_email]
    assert email.dedupe_key.startswith("payment_failed:in_")

    invoice = world.stripe.v1.subscriptions.retrieve(sub_id).latest_invoice
    world.stripe.v1.invoices.pay(invoice)  # the retry succeeds
    world.emu.wait_for_webhooks()
    assert world.billing(org)["status"] == "active"

    world.emu.set_subscription_status(sub_id, "unpaid")  # retries exhausted
    ended = world.billing(org)
    assert ended["plan"]["id"] == "free" and ended["has_subscription"] is False
    assert [(c.to_plan, c.source) for c in world.plan_changes(org.id)] == [
        ("pro", "api"),
        ("free", "webhook"),
    ]
    assert len(_notifications(world, org.id, "payment_failed")) == 1


def test_duplicate_and_reversed_deliveries_converge_on_stripes_truth(world: StripeWorld) -> None:
    org = world.org()
    with world.api(org) as c:
        started = c.post("/billing/checkout", json={"plan": "pro", "interval": "monthly"}).json()["data"]
    world.emu.hold_webhooks()
    done = world.emu.complete_checkout(started["id"])
    team = world.stripe.v1.prices.list(params={"lookup_keys": ["modelux_team_annual"]}).data[0]
    world.advance(3 * DAY)
    world.emu.hold_webhooks()
    world.emu.portal_change_price(done["subscription"], team.id, proration_behavior="always_invoice")
    assert world.billing(org)["plan"]["id"] == "free"  # nothing delivered yet

    results = world.emu.release_webhooks(order="reverse", duplicate=True)
    assert results and all(r.status_code == 200 for r in results)
    assert world.billing(org)["plan"] == {"id": "team", "name": "Team", "interval": "annual"}
    # the first delivery (the newest event) already saw the final truth: one change, not three
    [change] = world.plan_changes(org.id)
    assert (change.from_plan, change.to_plan, change.to_interval) == ("free", "team", "annual")
    assert change.source == "api"  # the checkout was started through the API
    handled = {r.event_id for r in results if json.loads(r.text)["result"] == "processed"}
    duplicates = [r for r in results if json.loads(r.text)["result"] == "duplicate"]
    assert len(duplicates) == len(handled) and world.stripe_event_count() == len(handled)

    # delivering everything again, shuffled, changes nothing
    before = world.state(org.id)
    for event in world.emu.events():
        world.emu.redeliver(event["id"])
    after = world.state(org.id)
    assert (after.plan_id, after.interval, after.revision) == (
        before.plan_id,
        before.interval,
        before.revision,
    )
    assert len(world.plan_changes(org.id)) == 1


def test_a_portal_change_takes_effect_like_an_api_one_and_the_email_syncs(world: StripeWorld) -> None:
    org = world.org()
    sub_id = world.subscribe(org, "team")
    pro = world.stripe.v1.prices.list(params={"lookup_keys": ["modelux_pro_monthly"]}).data[0]
    world.emu.portal_change_price(sub_id, pro.id, proration_behavior="always_invoice")
    summary = world.billing(org)
    assert summary["plan"]["id"] == "pro" and summary["features"]["audit_log"] is False
    assert [(c.to_plan, c.source) for c in world.plan_changes(org.id)] == [("team", "api"), ("pro", "portal")]

    customer = world.state(org.id).stripe_customer_id
    assert customer is not None
    world.emu.portal_update_customer(customer, email="billing@acme.test", tax_id="DE999999999")
    assert world.billing(org)["billing_email"] == "billing@acme.test"


def test_forged_stale_and_unsigned_webhooks_are_refused_and_change_nothing(sqlite_world: StripeWorld) -> None:
    world = sqlite_world
    org = world.org()
    sub_id = world.subscribe(org, "pro")
    deleted = dict(world.emu.events("customer.subscription.created")[-1])
    deleted.update(id="evt_forged_1", type="customer.subscription.deleted")
    payload = json.dumps(deleted)
    events_before = world.stripe_event_count()

    forged = _post(world, payload, sign(payload, "whsec_attacker"))
    stale = _post(world, payload, sign(payload, WEBHOOK_SECRET, timestamp=int(time.time()) - 301))
    unsigned = _post(world, payload, None)
    tampered = _post(world, payload.replace(sub_id, "sub_other"), sign(payload, WEBHOOK_SECRET))
    for r in (forged, stale, unsigned, tampered):
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["type"] == "invalid_request_error" and error["code"] == "invalid_signature"
    assert "tolerance" in stale.json()["error"]["message"].lower()
    assert world.billing(org)["plan"]["id"] == "pro"
    assert world.stripe_event_count() == events_before

    # correctly signed but of a type we do not handle: 200, and nothing is stored
    other = json.dumps({"id": "evt_x", "type": "product.created", "data": {"object": {"id": "prod_x"}}})
    ok = _post(world, other, sign(other, WEBHOOK_SECRET))
    assert ok.status_code == 200 and ok.json()["result"] == "ignored"
    assert world.stripe_event_count() == events_before


def test_signed_but_malformed_events_are_refused_with_400_and_change_nothing(world: StripeWorld) -> None:
    org = world.org()
    world.subscribe(org, "pro")
    events_before = world.stripe_event_count()
    malformed = [
        "[]",
        '{"id": "evt_m1"}',
        '{"id": 5, "type": "customer.subscription.deleted", "data": {"object": {"id": "sub_x"}}}',
        '{"id": "evt_m2", "type": "customer.subscription.deleted", "data": {"object": []}}',
        '{"id": "evt_m3", "type": "customer.subscription.deleted", "data": {"object": {"customer": 1}}}',
        '{"id": "evt_m4", "type": "customer.subscription.deleted", "data": {"object": {"id": 7}}}',
        '{"id": "evt_\\u0000", "type": "invoice.paid", "data": {"object": {"id": "in_1"}}}',
        '{"id": "evt_m5", "type": "checkout.session.completed", "data": {"object": {"id": "cs_1", '
        '"metadata": "not-a-dict"}}}',
        '{"id": "' + "e" * 300 + '", "type": "invoice.paid", "data": {"object": {"id": "in_1"}}}',
    ]
    for payload in malformed:
        r = _post(world, payload, sign(payload, WEBHOOK_SECRET))
        assert r.status_code == 400, (payload, r.status_code, r.text)
        error = r.json()["error"]
        assert error["type"] == "invalid_request_error" and error["code"] == "invalid_event"
    assert world.stripe_event_count() == events_before
    assert world.billing(org)["plan"]["id"] == "pro"
