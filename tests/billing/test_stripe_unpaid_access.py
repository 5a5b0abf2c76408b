"""No paid access without payment: paused, past_due beyond our grace, unpaid (issue 13, item 6),
and Stripe Tax through MODELUX_STRIPE_AUTOMATIC_TAX."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import stripe

from modelux_server.billing.stripe.reconcile import reconcile
from modelux_server.kit.clock import FrozenClock
from tests.billing.stripe_world import (
    API_KEY,
    DAY,
    JAN_10_2026,
    WEBHOOK_SECRET,
    StripeWorld,
    stripe_settings,
    when,
)
from tests.conftest import Org
from tests.support.live_server import LiveServer
from tests.support.stripe_emulator import StripeEmulator


def _reconcile(world: StripeWorld) -> None:
    # in process: the nightly job runs on the app's clock, which follows the emulator's
    world.server.call(reconcile(world.rt))


def test_a_paused_subscription_is_the_free_plan(world: StripeWorld) -> None:
    org = world.org()
    sub_id = world.subscribe(org, "pro")
    world.emu.set_subscription_status(sub_id, "paused")
    world.emu.wait_for_webhooks()
    billing = world.billing(org)
    assert billing["plan"]["id"] == "free"
    assert world.state(org.id).stripe_subscription_id is None

    world.emu.set_subscription_status(sub_id, "active")  # resumed: paying again
    world.emu.wait_for_webhooks()
    assert world.billing(org)["plan"]["id"] == "pro"


def _past_due(world: StripeWorld) -> tuple[Org, str]:
    org = world.org()
    sub_id = world.subscribe(org, "pro")
    world.emu.fail_next_payment(sub_id)
    # the app's clock follows the emulator's once an advance is over: step up to
    # the renewal first, so the failure's webhook lands at (about) its own time
    world.advance(31 * DAY - 60)
    world.advance(60)  # renewal on 2026-02-10: the card is declined
    world.emu.wait_for_webhooks()
    assert world.stripe.v1.subscriptions.retrieve(sub_id).status == "past_due"
    return org, sub_id


def test_past_due_keeps_the_plan_within_the_grace(world: StripeWorld) -> None:
    org, sub_id = _past_due(world)
    world.advance(13 * DAY)
    _reconcile(world)
    assert world.billing(org)["plan"]["id"] == "pro"
    assert world.state(org.id).stripe_subscription_id == sub_id


def test_past_due_beyond_the_grace_is_the_free_plan_whatever_stripe_retries(world: StripeWorld) -> None:
    # an account whose retry schedule outlasts our grace: its first retry is three weeks out
    world.emu.set_retry_policy(days=(21,), then="past_due")
    org, sub_id = _past_due(world)
    world.advance(15 * DAY)  # Stripe still retries: the subscription is past_due
    assert world.stripe.v1.subscriptions.retrieve(sub_id).status == "past_due"
    _reconcile(world)
    billing = world.billing(org)
    assert billing["plan"]["id"] == "free"
    assert world.state(org.id).stripe_subscription_id is None
    _reconcile(world)  # the still past_due subscription is not adopted again
    assert world.billing(org)["plan"]["id"] == "free"

    invoice = world.stripe.v1.subscriptions.retrieve(sub_id).latest_invoice
    world.stripe.v1.invoices.pay(str(invoice))  # a late payment: paid again, so the plan is back
    world.emu.wait_for_webhooks()
    assert world.billing(org)["plan"]["id"] == "pro"


def test_unpaid_is_the_free_plan_and_canceled_in_stripe(world: StripeWorld) -> None:
    org = world.org()
    sub_id = world.subscribe(org, "pro")
    world.emu.set_subscription_status(sub_id, "unpaid")
    world.emu.wait_for_webhooks()
    assert world.billing(org)["plan"]["id"] == "free"
    assert world.stripe.v1.subscriptions.retrieve(sub_id).status == "canceled"


def test_checkout_has_no_automatic_tax_by_default(world: StripeWorld) -> None:
    org = world.org()
    with world.api(org) as c:
        r = c.post("/billing/checkout", json={"plan": "pro", "interval": "monthly"})
    assert r.status_code == 200, r.text
    session = world.stripe.v1.checkout.sessions.retrieve(r.json()["data"]["id"])
    assert session.automatic_tax.enabled is False


@pytest.fixture
def taxed_world(db_url: str, tmp_path: Path) -> Iterator[StripeWorld]:
    """The Stripe world with MODELUX_STRIPE_AUTOMATIC_TAX on."""
    emu = StripeEmulator(webhook_secret=WEBHOOK_SECRET, api_key=API_KEY, start_time=JAN_10_2026)
    emu.start()
    clock = FrozenClock(when(emu.now()))
    settings = stripe_settings(db_url, tmp_path / "data", emu, stripe_automatic_tax=True)
    server = LiveServer(settings, clock=clock).start()
    emu.webhook_url = f"{server.url}/webhooks/stripe"
    client = stripe.StripeClient(emu.api_key, base_addresses={"api": emu.base_url}, max_network_retries=0)
    world = StripeWorld(emu=emu, server=server, clock=clock, stripe=client)
    try:
        world.sync_catalog()
        emu.wait_for_webhooks()
        yield world
    finally:
        server.stop()
        emu.stop()


def test_checkout_asks_for_automatic_tax_when_the_setting_is_on(taxed_world: StripeWorld) -> None:
    org = taxed_world.org()
    with taxed_world.api(org) as c:
        r = c.post("/billing/checkout", json={"plan": "pro", "interval": "monthly"})
    assert r.status_code == 200, r.text
    session = taxed_world.stripe.v1.checkout.sessions.retrieve(r.json()["data"]["id"])
    assert session.automatic_tax.enabled is True
