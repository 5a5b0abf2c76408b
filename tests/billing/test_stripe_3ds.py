"""3-D Secure: an upgrade or a renewal the bank wants the customer to confirm.

Stripe's test card 4000 0027 6000 3184 asks for authentication on every
payment; 4000 0025 0000 3155 only until it is set up for off-session use.
"""

from __future__ import annotations

from sqlalchemy import select

from modelux_server.models import Notification
from tests.billing.stripe_world import DAY, StripeWorld

ALWAYS_AUTHENTICATE = "4000002760003184"
AUTHENTICATE_UNLESS_SET_UP = "4000002500003155"


def _subjects(world: StripeWorld, org_id: str, kind: str) -> list[str]:
    async def read() -> list[str]:
        async with world.rt.db.session() as session:
            stmt = select(Notification).where(Notification.org_id == org_id, Notification.kind == kind)
            return [n.subject for n in (await session.execute(stmt)).scalars()]

    return world.server.call(read())


def test_an_upgrade_that_needs_authentication_answers_402_with_the_invoice_page(world: StripeWorld) -> None:
    org = world.org()
    sub_id = world.subscribe(org, "pro")
    customer = world.state(org.id).stripe_customer_id
    assert customer is not None
    world.emu.set_card(customer, ALWAYS_AUTHENTICATE)
    world.advance(10 * DAY)

    r = world.change_plan(org, "team")
    assert r.status_code == 402, r.text
    error = r.json()["error"]
    assert (error["type"], error["code"]) == ("payment_error", "payment_action_required")
    invoice = world.stripe.v1.invoices.retrieve(error["invoice"])
    assert error["hosted_invoice_url"] == invoice.hosted_invoice_url and invoice.status == "open"
    assert "3-D Secure" in error["message"]
    # nothing changed yet, here or in Stripe (the change waits as a pending update)
    assert world.billing(org)["plan"]["id"] == "pro"
    assert world.stripe.v1.subscriptions.retrieve(sub_id).pending_update is not None

    world.emu.complete_invoice_authentication(invoice.id)  # the customer confirms on that page
    world.emu.wait_for_webhooks()
    assert world.billing(org)["plan"]["id"] == "team"
    # credited to the API key that asked, though it completed hours later through Stripe
    assert [(c.to_plan, c.source) for c in world.plan_changes(org.id)][-1] == ("team", "api")
    assert world.state(org.id).pending_change is None  # used up


def test_a_declined_upgrade_is_not_reported_as_authentication(world: StripeWorld) -> None:
    org = world.org()
    world.subscribe(org, "pro")
    customer = world.state(org.id).stripe_customer_id
    assert customer is not None
    world.emu.set_card(customer, "4000000000000341")  # attaches, every charge declined
    r = world.change_plan(org, "team")
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "payment_failed" and error["hosted_invoice_url"].startswith(world.emu.base_url)
    assert world.billing(org)["plan"]["id"] == "pro"


def test_a_renewal_that_needs_authentication_emails_the_confirmation_link(world: StripeWorld) -> None:
    org = world.org()
    sub_id = world.subscribe(org, "pro")
    customer = world.state(org.id).stripe_customer_id
    assert customer is not None
    world.emu.set_card(customer, AUTHENTICATE_UNLESS_SET_UP)  # attached without an off-session set-up
    world.advance(31 * DAY - 60)
    world.advance(60)  # the renewal on 2026-02-10 wants authentication
    world.emu.wait_for_webhooks()
    assert world.emu.events("invoice.payment_action_required")
    assert world.stripe.v1.subscriptions.retrieve(sub_id).status == "past_due"
    assert world.billing(org)["plan"]["id"] == "pro"  # within the past_due grace
    assert _subjects(world, org.id, "payment_failed") == ["[modelux] Confirm your payment for Acme"]
