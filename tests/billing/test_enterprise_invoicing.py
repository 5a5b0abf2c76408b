"""An Enterprise plan paid by invoice, through the Stripe emulator, end to end.

The operator's plan with invoice terms makes a `send_invoice` subscription on a price of
the customer's own; Stripe finalizes and emails the first invoice, which is mirrored in
`enterprise_invoices` whatever order (and how often) its webhooks arrive. Past its due
date the operator is emailed once (real SMTP) and the organization keeps its plan, or,
set to downgrade, moves to its contract's end plan. Paying it marks it paid.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from modelux_server.admin.auth import Operator
from modelux_server.billing.processor import PriceRef
from modelux_server.billing.stripe.apply import plan_of_price
from modelux_server.billing.stripe.catalog_push import product_id
from modelux_server.config import Settings
from modelux_server.enterprise import invoice_sync, invoices, plans
from modelux_server.enterprise.schemas import PlanInput
from modelux_server.kit.clock import FrozenClock
from modelux_server.models import CustomPlan, EnterpriseInvoice, OperatorAction, PlanState
from modelux_server.services import Services
from tests.billing.stripe_world import DAY, StripeWorld, start_world, when
from tests.conftest import make_org
from tests.notifications.conftest import SmtpSink, body, outbox, running, worker
from tests.notifications.test_mailer import EphemeralController

OPERATOR = "ops@modelux.test"
HOUR = 3600  # Stripe finalizes and sends a send_invoice subscription's first invoice an hour in
PLAN: dict[str, Any] = {
    "name": "Acme Enterprise",
    "limits": {"monthly_requests": "unlimited"},
    "price": {"amount": "120000.00", "currency": "usd", "interval": "annual"},
    "contract": {"start": "2026-01-10", "end_plan": "pro"},
    "payment": {"method": "invoice", "net_days": 30, "po_number": "PO-7781"},
    "billing_contact": {"name": "Accounts Payable", "email": "ap@acme.test"},
    "support_channel": "Shared Slack #acme",
}


@dataclass
class Smtp:
    sink: SmtpSink
    url: str


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    sink = SmtpSink()
    controller = EphemeralController(sink, hostname="127.0.0.1", port=0)
    controller.start()
    yield Smtp(sink, f"smtp://127.0.0.1:{controller.port}?timeout=5")
    controller.stop()


@pytest.fixture
def ent(db_url: str, tmp_path: Path, smtp: Smtp) -> Iterator[StripeWorld]:
    """Stripe mode with an operator address; overdue invoices keep the plan (the default)."""
    yield from start_world(db_url, tmp_path / "data", operator_email=OPERATOR, smtp_url=smtp.url)


@pytest.fixture
def downgrading(sqlite_template: Path, tmp_path: Path, smtp: Smtp) -> Iterator[StripeWorld]:
    from tests.support import databases

    url = databases.sqlite_copy(sqlite_template, tmp_path)
    yield from start_world(
        url,
        tmp_path / "data",
        operator_email=OPERATOR,
        smtp_url=smtp.url,
        enterprise_overdue_action="downgrade",
    )


# ---------------------------------------------------------------------- helpers


def give_plan(world: StripeWorld, org_id: str, **changes: Any) -> CustomPlan:
    async def work(rt: Services) -> CustomPlan:
        async with rt.db.session() as session:
            given = PlanInput.model_validate({**PLAN, **changes})
            return await plans.create_plan(session, rt, org_id, given, actor="operator:alice")

    plan = world.server.call(work)
    world.emu.wait_for_webhooks()
    return plan


def edit_plan(world: StripeWorld, org_id: str, **changes: Any) -> CustomPlan:
    async def work(rt: Services) -> CustomPlan:
        async with rt.db.session() as session:
            given = PlanInput.model_validate(changes)
            return await plans.edit_plan(session, rt, org_id, given, actor="operator:alice")

    plan = world.server.call(work)
    world.emu.wait_for_webhooks()
    return plan


def current_plan(world: StripeWorld, org_id: str) -> CustomPlan | None:
    async def read(rt: Services) -> CustomPlan | None:
        async with rt.db.session() as session:
            state = await session.get(PlanState, org_id)
            assert state is not None
            return await session.get(CustomPlan, state.custom_plan_id) if state.custom_plan_id else None

    return world.server.call(read)


def invoices_of(world: StripeWorld, org_id: str) -> list[EnterpriseInvoice]:
    async def read(rt: Services) -> list[EnterpriseInvoice]:
        async with rt.db.session() as session:
            rows = await session.execute(
                select(EnterpriseInvoice)
                .where(EnterpriseInvoice.org_id == org_id)
                .order_by(EnterpriseInvoice.created_at)
            )
            return list(rows.scalars())

    return world.server.call(read)


def run_outbox(world: StripeWorld, smtp: Smtp) -> None:
    world.server.call(worker(world.rt, smtp.url).run_once())


def run_job(world: StripeWorld) -> invoice_sync.Round:
    return world.server.call(invoice_sync.run(world.rt))


def overdue_mails(smtp: Smtp) -> list[EmailMessage]:
    return [m for m in smtp.sink.accepted if m["X-Modelux-Notification"] == "invoice_overdue"]


def last_request(world: StripeWorld, path: str) -> dict[str, Any]:
    sent = world.emu.requests("POST", path)
    assert sent, f"nothing was sent to {path}"
    return sent[-1]


# ---------------------------------------------------------------------- the flow


def test_invoice_terms_make_a_send_invoice_subscription_whose_first_invoice_is_mirrored(
    ent: StripeWorld,
) -> None:
    org = ent.org("Acme", "owner@acme.test")
    ent.emu.hold_webhooks()
    plan = give_plan(ent, org.id)
    ent.advance(HOUR)

    # what Stripe was asked: a price of this customer's own, then a subscription that sends invoices
    price_call = last_request(ent, "/v1/prices")
    assert price_call["params"]["unit_amount"] == 12_000_000
    assert price_call["params"]["currency"] == "usd"
    assert price_call["params"]["recurring"] == {"interval": "year", "interval_count": 1}
    assert price_call["params"]["metadata"] == {"modelux_enterprise_plan": plan.id, "modelux_org": org.id}
    assert "lookup_key" not in price_call["params"]
    assert price_call["idempotency_key"] == f"enterprise-price:{plan.id}"
    sub_call = last_request(ent, "/v1/subscriptions")
    assert sub_call["params"]["collection_method"] == "send_invoice"
    assert sub_call["params"]["days_until_due"] == 30
    assert sub_call["params"]["metadata"] == {"modelux_enterprise_plan": plan.id, "modelux_org": org.id}
    assert sub_call["params"]["invoice_settings"] == {
        "custom_fields": [{"name": "PO number", "value": "PO-7781"}]
    }
    assert sub_call["idempotency_key"] == f"enterprise-subscription:{plan.id}"

    saved = current_plan(ent, org.id)
    assert saved is not None and saved.id == plan.id
    assert saved.stripe_subscription_id is not None and saved.stripe_price_id is not None
    state = ent.state(org.id)
    assert state.plan_id == "enterprise" and state.custom_plan_id == plan.id
    assert state.stripe_subscription_id is None  # billing follows no self-serve subscription
    customer = ent.stripe.v1.customers.retrieve(str(state.stripe_customer_id))
    assert (customer.email, customer.name) == ("ap@acme.test", "Accounts Payable")
    price = ent.stripe.v1.prices.retrieve(saved.stripe_price_id)
    assert price.lookup_key is None and price.unit_amount == 12_000_000

    sub = ent.stripe.v1.subscriptions.retrieve(saved.stripe_subscription_id)
    assert (sub.status, sub.collection_method, sub.days_until_due) == ("active", "send_invoice", 30)
    invoice = ent.latest_invoice(sub.id)
    assert (invoice.status, invoice.amount_due) == ("open", 12_000_000)
    assert invoice.hosted_invoice_url
    assert invoice.due_date == ent.emu.now() + 30 * DAY
    assert [e["type"] for e in ent.emu.events() if e["data"]["object"]["id"] == invoice.id] == [
        "invoice.created",
        "invoice.finalized",
        "invoice.sent",
    ]

    # every event of it delivered twice, newest first: one row, as Stripe has it now
    results = ent.emu.release_webhooks(order="reverse", duplicate=True)
    assert results and all(r.ok for r in results), [(r.type, r.status_code, r.text) for r in results]
    rows = invoices_of(ent, org.id)
    assert len(rows) == 1
    row = rows[0]
    assert (row.stripe_invoice_id, row.source, row.custom_plan_id) == (invoice.id, "stripe", plan.id)
    assert (row.status, row.amount_cents, row.currency) == ("open", 12_000_000, "usd")
    assert row.hosted_url == invoice.hosted_invoice_url and row.number == invoice.number
    assert row.due_at == when(invoice.due_date or 0) and row.paid_at is None
    assert row.po_number == "PO-7781"
    assert row.period_start is not None and row.period_end is not None
    assert row.period_end - row.period_start >= timedelta(days=365)
    # the plan never moved: only the operator's own change is on record
    assert [(c.to_plan, c.source) for c in ent.plan_changes(org.id)] == [("enterprise", "operator")]
    assert ent.state(org.id).custom_plan_id == plan.id


def test_the_per_customer_price_stays_out_of_the_self_serve_catalog(ent: StripeWorld) -> None:
    org = ent.org()
    plan = give_plan(ent, org.id)
    assert plan.stripe_price_id is not None
    price = ent.stripe.v1.prices.retrieve(plan.stripe_price_id)

    assert ent.sync_catalog() == []  # stripe-sync sees nothing to change
    catalog_keys = [f"modelux_{p}_{i}" for p in ("pro", "team") for i in ("monthly", "annual")]
    listed = ent.stripe.v1.prices.list(params={"lookup_keys": catalog_keys, "limit": 100})
    assert plan.stripe_price_id not in [p.id for p in listed.data]
    portal = next(
        c
        for c in ent.stripe.v1.billing_portal.configurations.list(params={"limit": 100}).data
        if c.metadata and c.metadata.to_dict().get("modelux") == "portal"
    )
    offered = [p.product for p in portal.features.subscription_update.products or []]
    assert price.product not in offered and offered == [product_id("pro"), product_id("team")]
    # and a subscription on it never maps to a self-serve plan, whatever it says
    ref = PriceRef(
        id=price.id,
        lookup_key=None,
        metadata={**price.metadata.to_dict(), "modelux_plan": "pro", "modelux_interval": "annual"},
        recurring_interval="year",
        unit_amount=price.unit_amount,
    )
    assert plan_of_price(ent.rt.catalog, ref) is None


def test_the_portal_that_could_cancel_the_contract_is_not_offered(ent: StripeWorld) -> None:
    org = ent.org()
    give_plan(ent, org.id)
    before = len(ent.emu.requests("POST", "/v1/billing_portal/sessions"))
    with ent.api(org) as c:
        r = c.post("/billing/portal", json={})
    assert r.status_code == 409 and r.json()["error"]["code"] == "custom_plan"
    assert "account manager" in r.json()["error"]["message"]
    assert len(ent.emu.requests("POST", "/v1/billing_portal/sessions")) == before
    assert ent.billing(org)["has_subscription"] is False  # so the page shows no portal button


def test_an_overdue_invoice_tells_the_operator_once_and_the_plan_is_kept(
    ent: StripeWorld, smtp: Smtp
) -> None:
    org = ent.org("Acme", "owner@acme.test")
    plan = give_plan(ent, org.id)
    assert invoices_of(ent, org.id) == []  # a draft for now: nothing to show yet
    ent.advance(HOUR)
    invoice_id = invoices_of(ent, org.id)[0].stripe_invoice_id
    assert invoice_id is not None

    ent.advance(30 * DAY + 60)  # past the due date: past_due and invoice.overdue in Stripe
    assert ent.stripe.v1.subscriptions.retrieve(str(plan.stripe_subscription_id)).status == "past_due"
    run_outbox(ent, smtp)
    run_outbox(ent, smtp)
    run_job(ent)  # the hourly check finds it told already
    run_outbox(ent, smtp)

    mails = overdue_mails(smtp)
    assert len(mails) == 1
    mail = mails[0]
    assert mail["To"] == OPERATOR
    number = ent.stripe.v1.invoices.retrieve(invoice_id).number
    assert mail["Subject"] == f"[modelux] Acme ({org.id}): invoice {number} is overdue"
    text = body(mail)
    assert "$120,000.00" in text and "keeps its Acme Enterprise plan until you act" in text
    assert f"modelux admin org {org.id}" in text
    assert "/invoice/" in text  # the hosted invoice link
    # the customer got no overdue email: only the operator did
    assert all(m["To"] == OPERATOR for m in mails)

    row = invoices_of(ent, org.id)[0]
    assert row.status == "past_due" and row.overdue_notified_at is not None
    state = ent.state(org.id)
    assert (state.plan_id, state.custom_plan_id) == ("enterprise", plan.id)
    assert [c.to_plan for c in ent.plan_changes(org.id)] == ["enterprise"]

    # paid by bank transfer, recorded in Stripe: paid here too, the subscription active
    ent.emu.pay_out_of_band(invoice_id)
    ent.emu.wait_for_webhooks()
    row = invoices_of(ent, org.id)[0]
    assert row.status == "paid" and row.paid_at == ent.clock.now()
    assert ent.stripe.v1.subscriptions.retrieve(str(plan.stripe_subscription_id)).status == "active"
    run_outbox(ent, smtp)
    assert len(overdue_mails(smtp)) == 1


def test_a_missed_overdue_webhook_is_caught_by_the_hourly_job(ent: StripeWorld, smtp: Smtp) -> None:
    org = ent.org()
    give_plan(ent, org.id)
    ent.advance(HOUR)
    before = len(ent.emu.events())
    ent.emu.drop_next_webhooks(2)  # the subscription's past_due and invoice.overdue never arrive
    ent.advance(31 * DAY)
    assert [e["type"] for e in ent.emu.events()[before:]] == [
        "customer.subscription.updated",
        "invoice.overdue",
    ]
    assert len(ent.emu.dropped) == 2
    assert invoices_of(ent, org.id)[0].status == "open"

    done = run_job(ent)
    run_job(ent)
    run_outbox(ent, smtp)

    assert done.refreshed == [org.id] and done.failed == []
    assert len(overdue_mails(smtp)) == 1
    assert invoices_of(ent, org.id)[0].status == "past_due"
    assert ent.state(org.id).plan_id == "enterprise"


def test_set_to_downgrade_an_overdue_invoice_moves_the_organization_to_its_end_plan(
    downgrading: StripeWorld, smtp: Smtp
) -> None:
    world = downgrading
    org = world.org("Acme", "owner@acme.test")
    plan = give_plan(world, org.id)
    world.advance(31 * DAY + HOUR)
    run_outbox(world, smtp)

    state = world.state(org.id)
    assert (state.plan_id, state.custom_plan_id) == ("pro", None)  # the contract's end plan
    assert [(c.to_plan, c.source) for c in world.plan_changes(org.id)][-1] == ("pro", "invoice_overdue")
    sub = world.stripe.v1.subscriptions.retrieve(str(plan.stripe_subscription_id))
    assert sub.status == "canceled"  # no more invoices for a plan it no longer has
    mails = overdue_mails(smtp)
    assert len(mails) == 1 and "was moved to the Pro plan" in body(mails[0])

    async def actions(rt: Services) -> list[OperatorAction]:
        async with rt.db.session() as session:
            rows = await session.execute(select(OperatorAction).where(OperatorAction.org_id == org.id))
            return list(rows.scalars())

    recorded = world.server.call(actions)
    assert [(a.operator, a.action, a.detail["reason"]) for a in recorded] == [
        ("system", "plan.changed", "invoice_overdue")
    ]


# ---------------------------------------------------------------------- edits


def test_edits_change_the_subscription_only_when_billing_changes(ent: StripeWorld) -> None:
    org = ent.org()
    first = give_plan(ent, org.id)
    sub_id = first.stripe_subscription_id
    assert sub_id is not None
    asked = len(ent.emu.requests("POST"))

    # nothing Stripe bills from: no request at all, the ids carried over
    second = edit_plan(ent, org.id, support_channel="support@acme.test", features=["sso"])
    assert len(ent.emu.requests("POST")) == asked
    assert (second.stripe_price_id, second.stripe_subscription_id) == (first.stripe_price_id, sub_id)

    # a new price and net terms: the same subscription, moved to a new price
    third = edit_plan(
        ent,
        org.id,
        price={"amount": "150000", "currency": "usd", "interval": "annual"},
        payment={"method": "invoice", "net_days": 45},
    )
    assert third.stripe_subscription_id == sub_id and third.stripe_price_id != first.stripe_price_id
    update = last_request(ent, f"/v1/subscriptions/{sub_id}")
    assert update["params"]["days_until_due"] == 45
    assert update["params"]["items"][0]["price"] == third.stripe_price_id
    assert update["params"]["invoice_settings"] == {"custom_fields": ""}  # the PO number is gone
    sub = ent.stripe.v1.subscriptions.retrieve(sub_id)
    assert sub.days_until_due == 45 and sub["items"].data[0].price.unit_amount == 15_000_000

    # card terms: no invoices any more
    fourth = edit_plan(ent, org.id, payment={"method": "card"})
    assert (fourth.stripe_price_id, fourth.stripe_subscription_id) == (None, None)
    assert ent.stripe.v1.subscriptions.retrieve(sub_id).status == "canceled"
    assert ent.state(org.id).custom_plan_id == fourth.id  # the plan itself is unchanged


def test_a_save_stripe_could_not_bill_is_kept_and_the_hourly_job_finishes_it(ent: StripeWorld) -> None:
    org = ent.org()
    ent.emu.fail_next_requests(1)  # Stripe is down when the operator saves
    plan = give_plan(ent, org.id)

    saved = current_plan(ent, org.id)
    assert saved is not None and saved.id == plan.id  # the plan applies anyway
    assert (saved.stripe_price_id, saved.stripe_subscription_id) == (None, None)
    assert ent.emu.requests("POST", "/v1/subscriptions") == []

    done = run_job(ent)
    again = run_job(ent)

    assert done.synced == [org.id] and again.synced == [] and again.refreshed == [org.id]
    finished = current_plan(ent, org.id)
    assert finished is not None and finished.stripe_subscription_id is not None
    assert len(ent.emu.requests("POST", "/v1/subscriptions")) == 1
    sub = ent.stripe.v1.subscriptions.retrieve(finished.stripe_subscription_id)
    assert (sub.collection_method, sub.metadata.to_dict()["modelux_enterprise_plan"]) == (
        "send_invoice",
        plan.id,
    )


def test_leaving_the_enterprise_plan_cancels_its_invoicing(ent: StripeWorld) -> None:
    from modelux_server.admin import service
    from modelux_server.admin.auth import Operator

    org = ent.org()
    plan = give_plan(ent, org.id)

    async def move(rt: Services) -> None:
        async with rt.db.session() as session:
            await service.move_plan(session, rt, Operator("alice", "api"), org.id, "team", "monthly")

    ent.server.call(move)
    ent.emu.wait_for_webhooks()

    assert ent.stripe.v1.subscriptions.retrieve(str(plan.stripe_subscription_id)).status == "canceled"
    state = ent.state(org.id)
    assert (state.plan_id, state.custom_plan_id) == ("team", None)
    # its events were still Enterprise ones: the plan they left stays where the operator put it
    assert [c.to_plan for c in ent.plan_changes(org.id)] == ["enterprise", "team"]


# ---------------------------------------------------------------------- manual billing


async def test_in_manual_billing_nothing_is_asked_and_a_recorded_invoice_past_due_is_told_once(
    settings: Settings, clock: FrozenClock
) -> None:
    async with running(settings.model_copy(update={"operator_email": OPERATOR}), clock) as rt:
        assert rt.settings.billing_mode == "manual"
        org = await make_org(rt, name="Acme", email="owner@acme.test")
        async with rt.db.session() as session:
            given = PlanInput.model_validate(PLAN)
            plan = await plans.create_plan(session, rt, org.id, given, actor="operator:alice")
        assert (plan.stripe_price_id, plan.stripe_subscription_id) == (None, None)
        async with rt.db.session() as session:
            record = invoices.InvoiceRecord(amount="120000", number="ACME-1", due=date(2026, 12, 1))
            await invoices.record_manual(session, rt, Operator("alice", "cli"), org.id, record)

        await invoice_sync.run(rt)  # not due yet
        assert [n for n in await outbox(rt, org.id) if n.kind == "invoice_overdue"] == []
        clock.advance(timedelta(days=4))
        await invoice_sync.run(rt)
        await invoice_sync.run(rt)

        told = [n for n in await outbox(rt, org.id) if n.kind == "invoice_overdue"]
        assert [(n.recipients, n.subject) for n in told] == [
            ([OPERATOR], f"[modelux] Acme ({org.id}): invoice ACME-1 is overdue")
        ]
        async with rt.db.session() as session:
            state = await session.get(PlanState, org.id)
            assert state is not None and state.custom_plan_id == plan.id
