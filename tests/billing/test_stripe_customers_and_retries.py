"""Deleted customers, cancel retries, dunning only for renewals, a customer id on two rows."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from modelux_server.billing.repository import find_by_customer
from modelux_server.billing.stripe.reconcile import reconcile
from modelux_server.models import Notification, PlanState
from tests.billing.stripe_world import StripeWorld
from tests.conftest import Org


def _notifications(world: StripeWorld, org_id: str, kind: str) -> list[Notification]:
    async def read() -> list[Notification]:
        async with world.rt.db.session() as session:
            stmt = select(Notification).where(Notification.org_id == org_id, Notification.kind == kind)
            return list((await session.execute(stmt)).scalars())

    return world.server.call(read())


def _checkout_again(world: StripeWorld, org: Org, old_customer: str) -> None:
    """A new Checkout works and makes a new Stripe customer."""
    with world.api(org) as c:
        r = c.post("/billing/checkout", json={"plan": "team", "interval": "monthly"})
    assert r.status_code == 200, r.text
    done = world.emu.complete_checkout(r.json()["data"]["id"])
    world.emu.wait_for_webhooks()
    assert done["customer"] and done["customer"] != old_customer


def test_a_deleted_customer_moves_the_org_to_free_and_checkout_makes_a_new_one(world: StripeWorld) -> None:
    org = world.org()
    sub_id = world.subscribe(org, "pro")
    customer = world.state(org.id).stripe_customer_id
    assert customer is not None

    world.stripe.v1.customers.delete(customer)
    world.emu.wait_for_webhooks()
    assert world.stripe.v1.customers.retrieve(customer).to_dict() == {
        "id": customer,
        "object": "customer",
        "deleted": True,
    }
    assert world.stripe.v1.subscriptions.retrieve(sub_id).status == "canceled"
    assert "customer.deleted" in [d["type"] for d in world.emu.delivered if d["status_code"] == 200]
    free = world.billing(org)
    assert free["plan"]["id"] == "free" and free["has_subscription"] is False
    state = world.state(org.id)
    assert state.stripe_customer_id is None and state.stripe_subscription_id is None

    _checkout_again(world, org, customer)
    assert world.billing(org)["plan"]["id"] == "team"
    assert [(c.to_plan, c.source) for c in world.plan_changes(org.id)] == [
        ("pro", "api"),
        ("free", "webhook"),
        ("team", "api"),
    ]


def test_reconcile_finds_a_deleted_customer_whose_webhooks_were_lost(world: StripeWorld) -> None:
    org = world.org()
    world.subscribe(org, "pro")
    customer = world.state(org.id).stripe_customer_id
    assert customer is not None
    dropped_before = len(world.emu.dropped)
    world.emu.drop_next_webhooks(100)
    world.stripe.v1.customers.delete(customer)  # we hear nothing of it
    lost = len(world.emu.dropped) - dropped_before
    world.emu.drop_next_webhooks(-(100 - lost))
    assert lost == 2  # customer.subscription.deleted, customer.deleted
    assert world.billing(org)["plan"]["id"] == "pro"

    [repair] = world.server.call(reconcile(world.rt))
    assert repair.org_id == org.id
    assert "plan_id: pro -> free" in repair.changes and f"customer_id: {customer} -> None" in repair.changes
    state = world.state(org.id)
    assert state.stripe_customer_id is None and state.stripe_subscription_id is None
    assert world.server.call(reconcile(world.rt)) == []  # nothing left to repair

    _checkout_again(world, org, customer)
    assert world.billing(org)["plan"]["id"] == "team"
    assert [(c.to_plan, c.source) for c in world.plan_changes(org.id)] == [
        ("pro", "api"),
        ("free", "reconcile"),
        ("team", "api"),
    ]


def test_change_to_free_after_stripe_already_cancelled_applies_it_without_cancelling_again(
    world: StripeWorld,
) -> None:
    org = world.org()
    sub_id = world.subscribe(org, "pro")
    dropped_before = len(world.emu.dropped)
    world.emu.drop_next_webhooks(100)
    # an earlier attempt reached Stripe, but its answer and the webhook were lost
    world.stripe.v1.subscriptions.cancel(sub_id)
    world.emu.drop_next_webhooks(-(100 - (len(world.emu.dropped) - dropped_before)))
    assert world.billing(org)["plan"]["id"] == "pro"
    cancels = world.emu._engine.subscriptions.cancel_requests
    assert cancels == [sub_id]

    r = world.change_plan(org, "free")
    assert r.status_code == 200, r.text
    free = r.json()["data"]
    assert free["plan"] == {"id": "free", "name": "Free", "interval": "monthly"}
    assert free["has_subscription"] is False
    assert cancels == [sub_id]  # no second DELETE
    assert [(c.to_plan, c.source) for c in world.plan_changes(org.id)] == [("pro", "api"), ("free", "api")]


def test_a_failed_upgrade_invoice_sends_no_dunning_email(world: StripeWorld) -> None:
    org = world.org()
    sub_id = world.subscribe(org, "pro")
    world.emu.fail_next_payment(sub_id)
    declined = world.change_plan(org, "team")
    assert declined.status_code == 409 and declined.json()["error"]["code"] == "payment_failed"
    [failed] = world.emu.events("invoice.payment_failed")
    assert failed["data"]["object"]["billing_reason"] == "subscription_update"
    assert any(d["event_id"] == failed["id"] and d["status_code"] == 200 for d in world.emu.delivered)
    assert world.billing(org)["plan"]["id"] == "pro"
    assert _notifications(world, org.id, "payment_failed") == []


def test_a_customer_id_on_two_organizations_does_not_fail_the_webhook(world: StripeWorld) -> None:
    first, second = world.org("First", "owner@first.test"), world.org("Second", "owner@second.test")
    sub_id = world.subscribe(first, "pro")
    customer = world.state(first.id).stripe_customer_id
    assert customer is not None
    later = world.state(first.id).updated_at + timedelta(hours=1)

    async def share() -> None:
        async with world.rt.db.session() as session:
            stmt = update(PlanState).where(PlanState.org_id == second.id)
            await session.execute(stmt.values(stripe_customer_id=customer, updated_at=later))

    world.server.call(share())

    # the customer names its organization in its metadata (start-checkout made it so)
    world.emu.portal_update_customer(customer, email="billing@first.test")
    [delivery] = [d for d in world.emu.delivered if d["type"] == "customer.updated"]
    assert delivery["status_code"] == 200, delivery
    assert world.state(first.id).billing_email == "billing@first.test"
    assert world.state(second.id).billing_email != "billing@first.test"

    async def by_customer_alone() -> str | None:
        async with world.rt.db.session() as session:
            found = await find_by_customer(session, customer)
            return found.org_id if found else None

    # without metadata or a subscription to tell them apart: the most recently updated row
    assert world.server.call(by_customer_alone()) == second.id

    async def by_subscription() -> str | None:
        async with world.rt.db.session() as session:
            found = await find_by_customer(session, customer, sub_id)
            return found.org_id if found else None

    # with a subscription id, the row following it
    assert world.server.call(by_subscription()) == first.id
