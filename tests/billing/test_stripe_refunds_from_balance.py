"""Money back on invoices the customer's credit balance paid in part: the card gets what it paid.

Stripe charges the card only `amount_paid`, what the balance left of the
invoice, and refuses to refund more than that charge. The balance's part goes
back to the balance (docs/decisions/0005-refunds-when-leaving.md).
"""

from __future__ import annotations

from typing import Any

import stripe

from tests.billing.stripe_world import DAY, StripeWorld
from tests.billing.test_stripe_money_paths import _checkout, _second_session
from tests.billing.test_stripe_refunds import _preview_free, _rows


def _grant_credit(world: StripeWorld, org: Any, cents: int) -> str:
    """Credit on the customer's Stripe balance (negative = credit), as an operator grants it."""
    customer = world.state(org.id).stripe_customer_id
    assert customer is not None
    world.stripe.v1.customers.update(customer, params={"balance": -cents})
    return customer


def _charge(world: StripeWorld, invoice_id: str) -> stripe.Charge:
    (payment,) = world.stripe.v1.invoice_payments.list(params={"invoice": invoice_id}).data
    intent = world.stripe.v1.payment_intents.retrieve(str(payment.payment.payment_intent))
    return world.stripe.v1.charges.retrieve(str(intent.latest_charge))


def _notes(world: StripeWorld, invoice_id: str) -> list[tuple[int, int, int]]:
    """(credit note total, refunded to the card, credited to the balance) on one invoice."""
    out = []
    for note in world.stripe.v1.credit_notes.list(params={"invoice": invoice_id}).data:
        refunded = sum(r.amount_refunded for r in note.refunds)
        out.append((note.amount, refunded, note.amount - refunded - (note.out_of_band_amount or 0)))
    return out


def _balance(world: StripeWorld, customer: str) -> int | None:
    return world.stripe.v1.customers.retrieve(customer).balance


def test_leaving_after_a_renewal_paid_partly_from_credit_refunds_only_the_cards_part(
    world: StripeWorld,
) -> None:
    org = world.org()
    sub_id = world.subscribe(org, "pro")  # 49.00 USD a month
    customer = _grant_credit(world, org, 1000)
    world.advance(31 * DAY)  # renewed on 2026-02-10 for 2026-02-10 .. 2026-03-10
    renewal = world.latest_invoice(sub_id)
    assert (renewal.total, renewal.amount_paid, renewal.status) == (4900, 3900, "paid")
    assert _charge(world, renewal.id).amount == renewal.amount_paid  # the 10.00 credit never hit the card
    world.advance(14 * DAY)  # half of February's 28 days left

    preview = _preview_free(world, org)
    assert (preview["refund_cents"], preview["credit_cents"]) == (1950, 500)
    assert world.change_plan(org, "free").status_code == 200
    assert world.billing(org)["plan"]["id"] == "free"

    assert _notes(world, renewal.id) == [(2450, 1950, 500)]  # half of each part, back where it came from
    charge = _charge(world, renewal.id)
    assert (charge.amount, charge.amount_refunded) == (3900, 1950)
    assert _balance(world, customer) == -500
    (row,) = _rows(world, org.id)
    assert (row.kind, row.status) == ("unused_time", "done")
    assert (row.planned_cents, row.refunded_cents) == (1950, 1950)
    assert "500 of 500 cents back to the customer's balance" in row.detail


def test_a_renewal_paid_wholly_from_credit_gives_the_unused_time_back_to_the_balance(
    world: StripeWorld,
) -> None:
    org = world.org()
    sub_id = world.subscribe(org, "pro")
    customer = _grant_credit(world, org, 10000)
    world.advance(31 * DAY)
    renewal = world.latest_invoice(sub_id)
    assert (renewal.total, renewal.amount_paid, renewal.status) == (4900, 0, "paid")
    assert _balance(world, customer) == -5100
    world.advance(14 * DAY)

    preview = _preview_free(world, org)
    assert (preview["refund_cents"], preview["credit_cents"]) == (0, 2450)
    assert world.change_plan(org, "free").status_code == 200
    assert _notes(world, renewal.id) == [(2450, 0, 2450)]  # nothing to the card: it paid nothing
    assert _balance(world, customer) == -5100 - 2450
    (row,) = _rows(world, org.id)
    assert (row.status, row.refunded_cents) == ("done", 0)


def test_a_duplicate_paid_partly_from_credit_refunds_amount_paid_and_restores_the_credit(
    world: StripeWorld,
) -> None:
    org = world.org()
    ours = _checkout(world, org)
    other = _second_session(world, org)
    world.emu.complete_checkout(ours["id"])
    world.emu.wait_for_webhooks()
    customer = _grant_credit(world, org, 1000)
    second = world.emu.complete_checkout(other)  # the duplicate spends the credit first
    world.emu.wait_for_webhooks()

    dup = world.stripe.v1.subscriptions.retrieve(second["subscription"])
    assert dup.status == "canceled"
    (invoice,) = world.stripe.v1.invoices.list(params={"subscription": dup.id}).data
    assert (invoice.total, invoice.amount_paid) == (4900, 3900)
    assert _notes(world, invoice.id) == [(4900, invoice.amount_paid, 1000)]
    charge = _charge(world, invoice.id)
    assert (charge.amount_refunded, charge.refunded) == (invoice.amount_paid, True)
    assert _balance(world, customer) == -1000  # the credit it spent is the customer's again
    (row,) = _rows(world, org.id)
    assert (row.kind, row.status, row.refunded_cents) == ("duplicate_subscription", "done", 3900)
