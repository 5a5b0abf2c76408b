"""Where money could leak: Checkout in two tabs, Stripe slow while we hold locks, previews, invoices.

Each test goes through the HTTP API against the strict Stripe emulator.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from sqlalchemy import select

from modelux_server.billing.stripe.locking import StateKeptChanging, read_then_apply
from modelux_server.billing.stripe.reconcile import reconcile
from modelux_server.models import PlanState, Refund
from tests.billing.stripe_world import DAY, StripeWorld


def _checkout(world: StripeWorld, org: Any, plan: str = "pro", interval: str = "monthly") -> dict[str, Any]:
    with world.api(org) as c:
        r = c.post("/billing/checkout", json={"plan": plan, "interval": interval})
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def _refunds(world: StripeWorld, org_id: str) -> list[Refund]:
    async def read() -> list[Refund]:
        async with world.rt.db.session() as session:
            return list((await session.execute(select(Refund).where(Refund.org_id == org_id))).scalars())

    return world.server.call(read())


def test_a_second_tab_gets_the_same_checkout_and_another_plan_expires_the_first(world: StripeWorld) -> None:
    org = world.org()
    first = _checkout(world, org)
    again = _checkout(world, org)
    assert again == first  # the same session, still payable, not a second one
    team = _checkout(world, org, "team")
    assert team["id"] != first["id"]
    assert world.emu.get(first["id"])["status"] == "expired"  # can no longer be paid
    world.emu.complete_checkout(team["id"])
    world.emu.wait_for_webhooks()
    assert world.billing(org)["plan"]["id"] == "team"
    assert (
        len(world.stripe.v1.subscriptions.list(params={"customer": world.state(org.id).stripe_customer_id}))
        == 1
    )


def test_a_checkout_paid_in_another_tab_is_applied_instead_of_starting_another(world: StripeWorld) -> None:
    org = world.org()
    first = _checkout(world, org)
    world.emu.hold_webhooks()  # the webhook is late
    world.emu.complete_checkout(first["id"])
    with world.api(org) as c:
        r = c.post("/billing/checkout", json={"plan": "team", "interval": "monthly"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "subscription_exists", r.text
    assert world.billing(org)["plan"]["id"] == "pro"  # followed at once, webhook or not
    world.emu.release_webhooks()
    world.emu.wait_for_webhooks()
    assert world.billing(org)["plan"]["id"] == "pro"


def _second_session(world: StripeWorld, org: Any) -> str:
    """A second open session next to ours, as a concurrent request could have made it.

    Same customer: start-checkout makes the organization's customer before any
    session, with an idempotency key, so concurrent requests share it.
    """
    meta = {"org_id": org.id, "modelux_plan": "pro", "modelux_interval": "monthly"}
    price = world.stripe.v1.prices.list(params={"lookup_keys": ["modelux_pro_monthly"]}).data[0].id
    session = world.stripe.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": price, "quantity": 1}],
            "success_url": "https://modelux.test/settings/billing",
            "client_reference_id": org.id,
            "metadata": meta,
            "subscription_data": {"metadata": meta},
            "customer": world.state(org.id).stripe_customer_id,
        }
    )
    return str(session.id)


def test_a_second_paid_subscription_is_canceled_and_refunded_in_full(world: StripeWorld) -> None:
    org = world.org()
    ours = _checkout(world, org)
    other = _second_session(world, org)
    first = world.emu.complete_checkout(ours["id"])
    world.emu.wait_for_webhooks()
    second = world.emu.complete_checkout(other)
    world.emu.wait_for_webhooks()

    assert world.state(org.id).stripe_subscription_id == first["subscription"]
    assert world.billing(org)["plan"]["id"] == "pro"
    dup = world.stripe.v1.subscriptions.retrieve(second["subscription"])
    assert dup.status == "canceled"
    (invoice,) = world.stripe.v1.invoices.list(params={"subscription": dup.id}).data
    notes = world.stripe.v1.credit_notes.list(params={"invoice": invoice.id}).data
    assert [sum(r.amount_refunded for r in n.refunds) for n in notes] == [n.amount for n in notes]
    assert sum(n.amount for n in notes) == invoice.amount_paid == 4900
    (refund,) = _refunds(world, org.id)
    assert (refund.kind, refund.subscription_id, refund.refunded_cents) == (
        "duplicate_subscription",
        dup.id,
        4900,
    )
    # a redelivery of the second checkout's event refunds nothing again
    event = next(
        e for e in world.emu.events("checkout.session.completed") if e["data"]["object"]["id"] == other
    )
    world.emu.redeliver(event["id"])
    assert len(world.stripe.v1.credit_notes.list(params={"invoice": invoice.id}).data) == len(notes)
    assert len(_refunds(world, org.id)) == 1


def test_reconcile_finds_a_second_subscription_whose_webhooks_were_lost(world: StripeWorld) -> None:
    org = world.org()
    ours = _checkout(world, org)
    other = _second_session(world, org)
    world.emu.complete_checkout(ours["id"])
    world.emu.wait_for_webhooks()
    world.emu.drop_next_webhooks(50)
    second = world.emu.complete_checkout(other)
    world.emu.wait_for_webhooks()
    assert world.stripe.v1.subscriptions.retrieve(second["subscription"]).status == "active"

    repairs = world.server.call(reconcile(world.rt))
    assert any(f"subscription {second['subscription']}: refunded" in str(r) for r in repairs), repairs
    assert world.stripe.v1.subscriptions.retrieve(second["subscription"]).status == "canceled"
    assert [r.kind for r in _refunds(world, org.id)] == ["duplicate_subscription"]
    assert world.server.call(reconcile(world.rt)) == []  # settled: nothing the second time


def test_a_slow_stripe_holds_no_lock_on_the_organization(world: StripeWorld) -> None:
    """While change-plan waits on Stripe, the same organization's other writes go through."""
    org = world.org()
    world.subscribe(org, "pro")
    billing = world.rt.billing
    in_stripe = threading.Event()

    def slowed(name: str) -> Any:
        real = getattr(billing, name)

        async def slow(*args: Any, **kwargs: Any) -> Any:
            in_stripe.set()
            await asyncio.sleep(1.5)
            return await real(*args, **kwargs)

        return slow

    # every Stripe call change-plan makes: prices, the read, the change, the read back
    slowed_names = ("price_id", "retrieve_subscription", "change_price")
    for name in slowed_names:
        setattr(billing, name, slowed(name))
    answer: dict[str, Any] = {}

    def upgrade() -> None:
        answer["response"] = world.change_plan(org, "team")

    worker = threading.Thread(target=upgrade)
    worker.start()
    try:
        assert in_stripe.wait(10)
        started = time.monotonic()
        with world.api(org) as c:
            r = c.post("/projects", json={"name": "while-stripe-thinks"})
        took = time.monotonic() - started
    finally:
        worker.join(30)
        for name in slowed_names:
            delattr(billing, name)
    assert r.status_code == 201, r.text
    # the project create takes the organization's lock (and SQLite's write lock)
    assert took < 1.5, f"the create waited {took:.1f}s for a lock held across a Stripe call"
    assert answer["response"].status_code == 200, answer["response"].text
    assert world.billing(org)["plan"]["id"] == "team"


def test_a_change_applied_while_stripe_was_read_makes_the_apply_read_again(world: StripeWorld) -> None:
    org = world.org()
    reads: list[int] = []

    async def scenario() -> int:
        async def read(state: PlanState) -> int:
            reads.append(state.revision)
            if len(reads) == 1:  # someone else changes the state meanwhile
                async with world.rt.db.session() as other:
                    moved = await other.get(PlanState, org.id)
                    assert moved is not None
                    moved.revision += 1
            return len(reads)

        async def apply(state: PlanState, value: int) -> int:
            return value

        async with world.rt.db.session() as session:
            return await read_then_apply(session, org.id, read, apply)

    assert world.server.call(scenario()) == 2
    assert reads[1] == reads[0] + 1


def test_the_preview_shows_what_change_plan_then_charges(world: StripeWorld) -> None:
    org = world.org()
    sub_id = world.subscribe(org, "pro")
    world.advance(15 * DAY)
    with world.api(org) as c:
        r = c.post("/billing/change-plan/preview", json={"plan": "team", "interval": "monthly"})
    assert r.status_code == 200, r.text
    preview = r.json()["data"]
    assert preview["object"] == "plan_change_preview" and preview["effective"] == "immediately"
    assert preview["amount_due_cents"] > 0 and preview["refund_cents"] == 0
    assert sum(line["amount_cents"] for line in preview["lines"]) == preview["amount_due_cents"]
    assert world.billing(org)["plan"]["id"] == "pro"  # a preview changes nothing
    assert world.change_plan(org, "team").status_code == 200
    assert world.latest_invoice(sub_id).amount_paid == preview["amount_due_cents"]

    with world.api(org) as c:
        down = c.post("/billing/change-plan/preview", json={"plan": "free"}).json()["data"]
    assert down["features_removed"] and down["amount_due_cents"] == 0 and down["refund_cents"] > 0


def test_invoices_are_listed_newest_first_with_a_cursor(world: StripeWorld) -> None:
    org = world.org()
    other = world.org("Globex", "owner@globex.test")
    with world.api(org) as c:
        assert c.get("/billing/invoices").json() == {"data": [], "next_cursor": None, "has_more": False}
    world.subscribe(org, "pro")
    world.subscribe(other, "pro")
    world.advance(3 * DAY)
    assert world.change_plan(org, "team").status_code == 200
    with world.api(org) as c:
        everything = c.get("/billing/invoices").json()
        first = c.get("/billing/invoices", params={"limit": 1}).json()
        rest = c.get("/billing/invoices", params={"limit": 1, "cursor": first["next_cursor"]}).json()
        foreign = (
            world.stripe.v1.invoices.list(params={"customer": world.state(other.id).stripe_customer_id})
            .data[0]
            .id
        )
        refused = c.get("/billing/invoices", params={"cursor": foreign})
    reasons = [i["billing_reason"] for i in everything["data"]]
    assert reasons == ["subscription_update", "subscription_create"]
    invoice = everything["data"][1]
    assert invoice["status"] == "paid" and invoice["total_cents"] == 4900 and invoice["tax_cents"] == 0
    assert invoice["number"] and invoice["hosted_invoice_url"] and invoice["invoice_pdf"]
    assert invoice["period"]["start"] and invoice["currency"] == "usd"
    assert first["has_more"] is True and [i["id"] for i in first["data"] + rest["data"]] == [
        i["id"] for i in everything["data"]
    ]
    assert rest["has_more"] is False
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_cursor"


def test_tax_ids_and_billing_email_follow_the_customer(world: StripeWorld) -> None:
    org = world.org()
    started = _checkout(world, org)
    world.emu.complete_checkout(started["id"], tax_id=("eu_vat", "DE123456789"))
    world.emu.wait_for_webhooks()
    assert world.billing(org)["tax_ids"] == [{"type": "eu_vat", "value": "DE123456789"}]
    customer = world.state(org.id).stripe_customer_id
    assert customer is not None
    world.emu.portal_update_customer(
        customer, email="ap@acme.test", tax_id="GB123456789", tax_id_type="gb_vat"
    )
    world.emu.wait_for_webhooks()
    shown = world.billing(org)
    assert shown["billing_email"] == "ap@acme.test"
    # the portal replaces the tax ID: customer.tax_id.deleted, then .created
    assert shown["tax_ids"] == [{"type": "gb_vat", "value": "GB123456789"}]


def test_a_state_that_keeps_moving_while_stripe_is_read_gives_up_with_409(world: StripeWorld) -> None:
    org = world.org()

    async def scenario() -> None:
        async def read(state: PlanState) -> None:
            async with world.rt.db.session() as other:
                moved = await other.get(PlanState, org.id)
                assert moved is not None
                moved.revision += 1

        async def apply(state: PlanState, value: None) -> None:
            raise AssertionError("never applied on a stale read")

        async with world.rt.db.session() as session:
            await read_then_apply(session, org.id, read, apply)

    try:
        world.server.call(scenario())
    except StateKeptChanging as exc:
        assert exc.status == 409 and exc.code == "billing_busy"
    else:
        raise AssertionError("read_then_apply applied a read the state had moved past")


def test_a_webhook_applied_before_stripes_answer_still_credits_the_change_to_its_author(
    world: StripeWorld,
) -> None:
    org = world.org()
    world.subscribe(org, "pro")
    billing = world.rt.billing
    real = billing.change_price

    async def answer_late(*args: Any, **kwargs: Any) -> Any:
        sub = await real(*args, **kwargs)
        # customer.subscription.updated is applied before our answer comes back
        await asyncio.to_thread(world.emu.wait_for_webhooks)
        return sub

    billing.change_price = answer_late  # type: ignore[method-assign]
    try:
        assert world.change_plan(org, "team").status_code == 200
    finally:
        del billing.change_price
    assert [(c.to_plan, c.source) for c in world.plan_changes(org.id)][-1] == ("team", "api")
    assert len([c for c in world.plan_changes(org.id) if c.to_plan == "team"]) == 1
    assert world.state(org.id).pending_change is None
