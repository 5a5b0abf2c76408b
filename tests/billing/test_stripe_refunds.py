"""Money back when leaving a paid plan: refunded to the card, never credited for unpaid time.

docs/decisions/0005-refunds-when-leaving.md is the policy these tests hold.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import select

from modelux_server.billing.processor import BillingProcessorError
from modelux_server.billing.stripe.reconcile import reconcile
from modelux_server.models import Refund
from tests.billing.stripe_world import DAY, StripeWorld
from tests.billing.test_stripe_portal import _open_portal


def _refunded(world: StripeWorld, sub_id: str) -> list[tuple[int, int]]:
    """(credit note amount, refunded to the card) for every credit note on the subscription's invoices."""
    out = []
    for invoice in world.stripe.v1.invoices.list(params={"subscription": sub_id}).data:
        for note in world.stripe.v1.credit_notes.list(params={"invoice": invoice.id}).data:
            out.append((note.amount, sum(r.amount_refunded for r in note.refunds)))
    return out


def _rows(world: StripeWorld, org_id: str) -> list[Refund]:
    async def read() -> list[Refund]:
        async with world.rt.db.session() as session:
            return list((await session.execute(select(Refund).where(Refund.org_id == org_id))).scalars())

    return world.server.call(read())


def _refund_rows(world: StripeWorld, org_id: str) -> list[tuple[str, int]]:
    return [(r.kind, r.refunded_cents) for r in _rows(world, org_id)]


def _preview_free(world: StripeWorld, org: Any) -> dict[str, Any]:
    with world.api(org) as c:
        r = c.post("/billing/change-plan/preview", json={"plan": "free"})
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def test_leaving_an_annual_plan_after_a_month_refunds_the_eleven_months_left(world: StripeWorld) -> None:
    org = world.org()
    sub_id = world.subscribe(org, "pro", "annual")  # 490.00 USD for 2026-01-10 .. 2027-01-10
    world.advance(31 * DAY)
    expected = round(49000 * (365 - 31) / 365)
    assert _preview_free(world, org)["refund_cents"] == expected  # shown before confirming

    world.emu.hold_webhooks()  # the cancellation's webhook comes after the answer
    assert world.change_plan(org, "free").status_code == 200
    assert _refunded(world, sub_id) == [(expected, expected)]
    customer = world.state(org.id).stripe_customer_id
    assert world.stripe.v1.customers.retrieve(customer).balance == 0  # nothing stranded on a balance
    assert _refund_rows(world, org.id) == [("unused_time", expected)]
    world.emu.release_webhooks(duplicate=True)
    world.emu.wait_for_webhooks()
    assert _refunded(world, sub_id) == [(expected, expected)]  # not refunded again


def test_a_period_whose_invoice_was_not_paid_refunds_nothing(world: StripeWorld) -> None:
    org = world.org()
    sub_id = world.subscribe(org, "pro")
    world.emu.fail_next_payment(sub_id, times=10)  # the renewal and every automatic retry
    world.advance(31 * DAY - 60)
    world.advance(60)  # the renewal on 2026-02-10 is declined: past_due
    world.emu.wait_for_webhooks()
    world.advance(5 * DAY)
    assert _preview_free(world, org)["refund_cents"] == 0
    with world.api(org) as c:
        # no upgrade on top of an unpaid renewal: its proration would credit unpaid time
        refused = c.post("/billing/change-plan", json={"plan": "team", "interval": "monthly"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "payment_past_due"
    assert world.change_plan(org, "free").status_code == 200
    assert _refunded(world, sub_id) == []
    assert _refund_rows(world, org.id) == [("unused_time", 0)]


def test_cancelling_in_the_portal_refunds_the_unused_time_too(world: StripeWorld) -> None:
    org = world.org()
    sub_id = world.subscribe(org, "pro")
    world.advance(31 * DAY // 2)
    session = _open_portal(world, org)
    world.emu.portal_session_cancel(session["id"], sub_id)
    world.emu.wait_for_webhooks()
    assert world.billing(org)["plan"]["id"] == "free"
    customer = world.state(org.id).stripe_customer_id
    assert world.stripe.v1.customers.retrieve(customer).balance == 0  # the portal credits nothing
    assert _refunded(world, sub_id) == [(2450, 2450)]


def test_a_refund_stripe_refuses_is_recorded_and_never_sent_twice(
    world: StripeWorld, caplog: pytest.LogCaptureFixture
) -> None:
    org = world.org()
    sub_id = world.subscribe(org, "pro")
    world.advance(31 * DAY // 2)
    billing = world.rt.billing

    async def refused(*args: Any, **kwargs: Any) -> str:
        raise BillingProcessorError("Stripe: refunds are switched off on this account")

    billing.refund = refused  # type: ignore[method-assign]
    try:
        with caplog.at_level(logging.ERROR, logger="modelux.billing"):
            r = world.change_plan(org, "free")
    finally:
        del billing.refund  # back to the class's method
    # the move to Free stands; the refund is the operator's to finish
    assert r.status_code == 200, r.text
    assert r.json()["data"]["plan"]["id"] == "free"
    (row,) = _rows(world, org.id)
    assert (row.status, row.refunded_cents, row.planned_cents) == ("failed", 0, 2450)
    assert "refunds are switched off" in row.detail
    assert any("billing incident" in m for m in caplog.messages)
    world.server.call(reconcile(world.rt))
    assert _refunded(world, sub_id) == []  # a failed row is not retried blindly


def test_a_portal_cancellation_whose_webhooks_were_lost_is_refunded_by_reconcile(world: StripeWorld) -> None:
    org = world.org()
    sub_id = world.subscribe(org, "pro")
    world.advance(31 * DAY // 2)
    session = _open_portal(world, org)
    world.emu.drop_next_webhooks(50)
    world.emu.portal_session_cancel(session["id"], sub_id)
    world.emu.wait_for_webhooks()
    assert world.billing(org)["plan"]["id"] == "pro"  # nothing heard yet
    repairs = world.server.call(reconcile(world.rt))
    assert any(f"refund for {sub_id}: 2450 of 2450 cents" in str(r) for r in repairs), repairs
    assert world.billing(org)["plan"]["id"] == "free"
    assert _refunded(world, sub_id) == [(2450, 2450)]
    assert world.server.call(reconcile(world.rt)) == []
