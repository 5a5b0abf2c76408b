"""The customer portal opens with the configuration `stripe-sync` wrote, not the account's default.

Stripe never makes an API-created configuration the default one, so a portal
session that does not name it gets the Dashboard's portal (or an error when
the Dashboard never saved one). The emulator enforces both.
"""

from __future__ import annotations

import re

import httpx

from tests.billing.stripe_world import StripeWorld

SELF_SERVE_KEYS = ["modelux_pro_monthly", "modelux_pro_annual", "modelux_team_monthly", "modelux_team_annual"]


def _open_portal(world: StripeWorld, org: object) -> dict[str, object]:
    with world.api(org) as c:  # type: ignore[arg-type]
        r = c.post("/billing/portal")
    assert r.status_code == 200, r.text
    return world.emu.get(r.json()["data"]["url"].rsplit("/", 1)[1])


def _ours(world: StripeWorld) -> dict[str, object]:
    confs = [c.to_dict() for c in world.stripe.v1.billing_portal.configurations.list().data]
    marked = [c for c in confs if c["metadata"].get("modelux") == "portal"]
    assert len(marked) == 1
    return marked[0]


def test_the_portal_names_our_configuration_and_offers_the_self_serve_prices(world: StripeWorld) -> None:
    org = world.org()
    sub_id = world.subscribe(org, "pro")
    ours = _ours(world)
    assert ours["is_default"] is False  # made through the API: never the default

    session = _open_portal(world, org)
    assert session["configuration"] == ours["id"]

    prices = {
        p.lookup_key: p.id for p in world.stripe.v1.prices.list(params={"lookup_keys": SELF_SERVE_KEYS})
    }
    assert set(prices) == set(SELF_SERVE_KEYS)
    page = httpx.get(str(session["url"]))
    assert set(re.findall(r"<option value='(price_[^']+)'>", page.text)) == set(prices.values())

    world.emu.portal_session_change_price(str(session["id"]), sub_id, prices["modelux_team_monthly"])
    world.emu.wait_for_webhooks()
    assert world.billing(org)["plan"] == {"id": "team", "name": "Team", "interval": "monthly"}
    assert [(c.to_plan, c.source) for c in world.plan_changes(org.id)][-1] == ("team", "portal")

    # cancelling in our portal ends the subscription now, like leaving through our API
    world.emu.portal_session_cancel(str(session["id"]), sub_id)
    world.emu.wait_for_webhooks()
    assert world.stripe.v1.subscriptions.retrieve(sub_id).status == "canceled"
    assert world.billing(org)["plan"]["id"] == "free"


def test_a_dashboard_default_portal_is_not_the_one_customers_get(sqlite_world: StripeWorld) -> None:
    world = sqlite_world
    # the Dashboard's default portal, which allows no plan switching at all
    default = world.emu.save_dashboard_portal({"invoice_history": {"enabled": True}})
    assert default["is_default"] is True
    org = world.org()
    world.subscribe(org, "pro")

    session = _open_portal(world, org)
    assert session["configuration"] == _ours(world)["id"] != default["id"]
