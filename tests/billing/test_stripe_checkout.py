"""Checkout and the customer portal, through the API, the real Stripe adapter and the emulator."""

from __future__ import annotations

from tests.billing.stripe_world import DAY, StripeWorld


def test_free_needs_no_card_and_checkout_makes_pro_with_pros_limits(world: StripeWorld) -> None:
    org = world.org()
    free = world.billing(org)
    assert free["plan"] == {"id": "free", "name": "Free", "interval": "monthly"}
    assert free["billing_mode"] == "stripe" and free["has_subscription"] is False
    assert free["meters"]["monthly_requests"]["limit"] == 10_000
    assert world.state(org.id).stripe_customer_id is None  # no card, no Stripe customer

    world.advance(2 * DAY)  # subscribe on the 12th; the org was made on the 10th
    with world.api(org) as c:
        r = c.post("/billing/checkout", json={"plan": "pro", "interval": "monthly"})
    assert r.status_code == 200, r.text
    started = r.json()["data"]
    assert set(started) == {"url", "id"} and started["id"].startswith("cs_")
    assert started["url"].startswith(world.emu.base_url)

    session = world.emu.get(started["id"])
    assert session["mode"] == "subscription" and session["client_reference_id"] == org.id
    # the organization's customer is made first (with the owner's email), so tabs share it
    customer = world.state(org.id).stripe_customer_id
    assert customer is not None and session["customer"] == customer
    assert world.stripe.v1.customers.retrieve(customer).email == org.owner_email
    assert session["tax_id_collection"]["enabled"] is True
    assert session["success_url"] == (
        "https://modelux.test/settings/billing?checkout=success&session_id={CHECKOUT_SESSION_ID}"
    )
    assert session["cancel_url"] == "https://modelux.test/settings/billing?checkout=cancel"
    # still Free until Stripe says the checkout was paid
    assert world.billing(org)["plan"]["id"] == "free"

    done = world.emu.complete_checkout(started["id"], tax_id=("eu_vat", "DE123456789"))
    world.emu.wait_for_webhooks()
    assert all(d["status_code"] == 200 for d in world.emu.delivered)
    sub = world.stripe.v1.subscriptions.retrieve(done["subscription"])
    assert sub.metadata["org_id"] == org.id
    assert sub["items"].data[0].price.lookup_key == "modelux_pro_monthly"

    pro = world.billing(org)
    assert pro["plan"] == {"id": "pro", "name": "Pro", "interval": "monthly"}
    assert pro["status"] == "active" and pro["has_subscription"] is True
    assert {name: m["limit"] for name, m in pro["meters"].items()} == {
        "monthly_requests": 250_000,
        "projects": 5,
        "api_keys": 25,
        "provider_credentials": 10,
    }
    assert pro["features"]["ensembles"] is True and pro["features"]["audit_log"] is False
    # the request window now turns on the subscription's anchor day (12th), not the org's (10th)
    assert pro["current_window"] == {"start": "2026-01-12T00:00:00Z", "end": "2026-02-12T00:00:00Z"}
    assert pro["renewal_date"] == "2026-02-12T00:00:00Z"
    state = world.state(org.id)
    assert state.stripe_customer_id == sub.customer and state.stripe_subscription_id == sub.id
    [change] = world.plan_changes(org.id)
    assert (change.from_plan, change.to_plan, change.source) == ("free", "pro", "api")
    assert change.actor and change.actor.startswith("mk_")  # the key that started the checkout

    # Pro's limits are in force: five projects, not one
    with world.api(org) as c:
        codes = [c.post("/projects", json={"name": f"p{i}"}).status_code for i in range(6)]
    assert codes == [201] * 5 + [402]


def test_checkout_is_refused_once_subscribed_and_for_free_or_enterprise(sqlite_world: StripeWorld) -> None:
    world = sqlite_world
    org = world.org()
    with world.api(org) as c:
        enterprise = c.post("/billing/checkout", json={"plan": "enterprise", "interval": "monthly"})
        assert enterprise.status_code == 422
        assert enterprise.json()["error"]["code"] == "plan_not_self_serve"
        assert "sales" in enterprise.json()["error"]["message"]
        free = c.post("/billing/checkout", json={"plan": "free", "interval": "monthly"})
        assert free.status_code == 422
        bad = c.post("/billing/checkout", json={"plan": "pro", "interval": "weekly"})
        assert bad.status_code == 422
    world.subscribe(org, "pro")
    with world.api(org) as c:
        again = c.post("/billing/checkout", json={"plan": "team", "interval": "annual"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "subscription_exists"


def test_portal_needs_a_customer_and_then_opens_for_it(sqlite_world: StripeWorld) -> None:
    world = sqlite_world
    org = world.org()
    with world.api(org) as c:
        early = c.post("/billing/portal")
    assert early.status_code == 409 and early.json()["error"]["code"] == "no_billing_account"

    world.subscribe(org, "pro")
    customer = world.state(org.id).stripe_customer_id
    with world.api(org) as c:
        default = c.post("/billing/portal")
        custom = c.post("/billing/portal", json={"return_url": "https://intranet.example/billing"})
        bad = c.post("/billing/portal", json={"return_url": "javascript:alert(1)"})
    assert default.status_code == 200, default.text
    url = default.json()["data"]["url"]
    assert url.startswith(f"{world.emu.base_url}/portal/bps_")
    portal = world.emu.get(url.rsplit("/", 1)[1])
    assert portal["customer"] == customer
    assert portal["return_url"] == "https://modelux.test/settings/billing"
    assert world.emu.get(custom.json()["data"]["url"].rsplit("/", 1)[1])["return_url"] == (
        "https://intranet.example/billing"
    )
    assert bad.status_code == 422


def test_a_returning_customer_checks_out_with_the_same_stripe_customer(sqlite_world: StripeWorld) -> None:
    world = sqlite_world
    org = world.org()
    world.subscribe(org, "pro")
    customer = world.state(org.id).stripe_customer_id
    assert world.change_plan(org, "free").status_code == 200
    with world.api(org) as c:
        r = c.post("/billing/checkout", json={"plan": "team", "interval": "annual"})
    assert r.status_code == 200, r.text
    session = world.emu.get(r.json()["data"]["id"])
    assert session["customer"] == customer and session["customer_email"] is None
    world.emu.complete_checkout(session["id"])
    world.emu.wait_for_webhooks()
    assert world.billing(org)["plan"] == {"id": "team", "name": "Team", "interval": "annual"}
    assert [(c.to_plan, c.to_interval) for c in world.plan_changes(org.id)] == [
        ("pro", "monthly"),
        ("free", "monthly"),
        ("team", "annual"),
    ]
