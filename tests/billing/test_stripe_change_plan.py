"""change-plan: immediate moves between Free, Pro and Team, monthly or annual, prorated by Stripe.

All subscriptions start on 2026-01-12, so the first period is 31 days long
and a change after a quarter (7.75 days) or half (15.5 days) of it has
exact proration amounts.
"""

from __future__ import annotations

from tests.billing.stripe_world import DAY, StripeWorld

PERIOD = 31 * DAY


def _amounts(invoice: object) -> list[int]:
    return sorted(line.amount for line in invoice.lines.data)  # type: ignore[attr-defined]


def test_upgrade_pro_to_team_then_monthly_to_annual_charges_the_proration_now(world: StripeWorld) -> None:
    org = world.org()
    world.advance(2 * DAY)
    sub_id = world.subscribe(org, "pro")
    assert world.latest_invoice(sub_id).amount_paid == 4900

    world.advance(PERIOD // 4)  # 3/4 of January's period left
    r = world.change_plan(org, "team", "monthly")
    assert r.status_code == 200, r.text
    summary = r.json()["data"]
    assert summary["plan"] == {"id": "team", "name": "Team", "interval": "monthly"}
    assert summary["features"]["audit_log"] is True and summary["meters"]["projects"]["limit"] == 25
    invoice = world.latest_invoice(sub_id)
    # always_invoice: credit 3/4 of $49, charge 3/4 of $199, collected at once
    assert invoice.billing_reason == "subscription_update" and invoice.status == "paid"
    assert _amounts(invoice) == [-3675, 14925]
    assert invoice.amount_paid == 11250
    # same interval: the anchor, and so the request window, stay on the 12th
    assert summary["current_window"]["start"] == "2026-01-12T00:00:00Z"
    assert summary["renewal_date"] == "2026-02-12T00:00:00Z"

    world.advance(PERIOD // 4)  # half of the period left: 2026-01-27T12:00Z
    r = world.change_plan(org, "team", "annual")
    assert r.status_code == 200, r.text
    annual = r.json()["data"]
    assert annual["plan"] == {"id": "team", "name": "Team", "interval": "annual"}
    invoice = world.latest_invoice(sub_id)
    # an interval switch restarts the cycle now: half a month of Team back, a full year billed
    assert _amounts(invoice) == [-9950, 199000]
    assert invoice.amount_paid == 189050
    # and moves the anchor: the request window follows the new anchor day from now on
    assert annual["renewal_date"] == "2027-01-27T12:00:00Z"
    assert annual["current_window"] == {"start": "2026-01-27T00:00:00Z", "end": "2026-02-27T00:00:00Z"}
    state = world.state(org.id)
    assert state.anchor_at.day == 27 and state.stripe_subscription_id == sub_id

    changes = [(c.from_plan, c.to_plan, c.to_interval, c.source) for c in world.plan_changes(org.id)]
    assert changes == [
        ("free", "pro", "monthly", "api"),
        ("pro", "team", "monthly", "api"),
        ("team", "team", "annual", "api"),
    ]
    # the webhooks that followed our own changes found them applied: nothing recorded twice
    assert all(d["status_code"] == 200 for d in world.emu.delivered)


def test_downgrade_team_to_pro_turns_team_features_off_keeps_configs_and_back(world: StripeWorld) -> None:
    org = world.org()
    world.advance(2 * DAY)
    sub_id = world.subscribe(org, "team")
    with world.api(org) as c:
        project = c.post("/projects", json={"name": "app"}).json()["data"]["id"]
        rules = c.post(
            "/routing-configs",
            json={
                "project_id": project,
                "slug": "rules",
                "strategy": "custom_rules",
                "rules": [{"if": 'tags.team == "search"', "then": "openai/gpt-4o-mini"}],
                "else": "openai/gpt-4o",
            },
        )
        assert rules.status_code == 201, rules.text
    config_id = rules.json()["data"]["id"]

    world.advance(PERIOD // 2)
    r = world.change_plan(org, "pro")
    assert r.status_code == 200, r.text
    pro = r.json()["data"]
    assert pro["plan"]["id"] == "pro"
    assert pro["features"]["audit_log"] is False and pro["features"]["custom_routing_rules"] is False
    assert pro["features"]["ensembles"] is True
    assert [(d["id"], d["strategy"]) for d in pro["dormant"]] == [(config_id, "custom_rules")]
    # half a month of Team back, half of Pro charged: a credit, not a refund
    invoice = world.latest_invoice(sub_id)
    assert _amounts(invoice) == [-9950, 2450] and invoice.total == -7500 and invoice.amount_paid == 0
    customer = world.state(org.id).stripe_customer_id
    assert world.stripe.v1.customers.retrieve(customer).balance == -7500
    with world.api(org) as c:
        kept = c.get(f"/routing-configs/{config_id}").json()["data"]
    assert kept["active"] is False and kept["rules"][0]["then"] == "openai/gpt-4o-mini"

    r = world.change_plan(org, "team")
    assert r.status_code == 200, r.text
    back = r.json()["data"]
    assert back["features"]["custom_routing_rules"] is True and back["dormant"] == []
    invoice = world.latest_invoice(sub_id)
    # the same half month the other way: paid entirely from the credit
    assert _amounts(invoice) == [-2450, 9950] and invoice.total == 7500 and invoice.amount_paid == 0
    assert world.stripe.v1.customers.retrieve(customer).balance == 0
    with world.api(org) as c:
        assert c.get(f"/routing-configs/{config_id}").json()["data"]["active"] is True


def test_change_to_free_cancels_the_subscription_now(world: StripeWorld) -> None:
    org = world.org()
    world.advance(2 * DAY)
    sub_id = world.subscribe(org, "pro")
    world.advance(PERIOD // 2)
    r = world.change_plan(org, "free")
    assert r.status_code == 200, r.text
    free = r.json()["data"]
    assert free["plan"] == {"id": "free", "name": "Free", "interval": "monthly"}
    assert free["has_subscription"] is False and free["status"] == "active"
    # back on the organization's own window day (created on the 10th)
    assert free["current_window"]["start"] == "2026-01-10T00:00:00Z"
    sub = world.stripe.v1.subscriptions.retrieve(sub_id)
    assert sub.status == "canceled"
    # the unused half of Pro goes back to the card, not onto a balance Free never spends
    assert world.stripe.v1.customers.retrieve(sub.customer).balance == 0
    (paid,) = world.stripe.v1.invoices.list(params={"subscription": sub_id, "status": "paid"}).data
    (note,) = world.stripe.v1.credit_notes.list(params={"invoice": paid.id}).data
    assert note.amount == 2450 and [r.amount_refunded for r in note.refunds] == [2450]
    state = world.state(org.id)
    assert state.stripe_subscription_id is None and state.stripe_customer_id == sub.customer
    assert [(c.to_plan, c.source) for c in world.plan_changes(org.id)] == [("pro", "api"), ("free", "api")]


def test_change_plan_refusals(sqlite_world: StripeWorld) -> None:
    world = sqlite_world
    org = world.org()
    with world.api(org) as c:
        no_sub = c.post("/billing/change-plan", json={"plan": "pro", "interval": "monthly"})
        enterprise = c.post("/billing/change-plan", json={"plan": "enterprise", "interval": "annual"})
        unknown = c.post("/billing/change-plan", json={"plan": "gold", "interval": "monthly"})
        to_free = c.post("/billing/change-plan", json={"plan": "free", "interval": "monthly"})
    assert no_sub.status_code == 409 and no_sub.json()["error"]["code"] == "checkout_required"
    assert "/billing/checkout" in no_sub.json()["error"]["message"]
    assert enterprise.status_code == 422 and "sales" in enterprise.json()["error"]["message"]
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_plan"
    assert to_free.status_code == 200 and to_free.json()["data"]["plan"]["id"] == "free"
    assert world.plan_changes(org.id) == []  # already there: nothing to record

    sub_id = world.subscribe(org, "pro")
    same = world.change_plan(org, "pro", "monthly")
    assert same.status_code == 200 and len(world.plan_changes(org.id)) == 1

    member = world.key(org, "member")
    with world.api(member) as c:
        denied = c.post("/billing/change-plan", json={"plan": "team", "interval": "monthly"})
        reads = c.get("/billing")
    assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_error"
    assert reads.status_code == 200
    admin = world.key(org, "admin")
    with world.api(admin) as c:
        assert c.post("/billing/change-plan", json={"plan": "team", "interval": "monthly"}).status_code == 200
    world.emu.wait_for_webhooks()

    # a declined card buys no upgrade: Stripe keeps the old price and so do we
    world.emu.fail_next_payment(sub_id)
    declined = world.change_plan(org, "team", "annual")
    assert declined.status_code == 409 and declined.json()["error"]["code"] == "payment_failed"
    assert world.billing(org)["plan"] == {"id": "team", "name": "Team", "interval": "monthly"}
