"""The return from Checkout applies the paid subscription before its webhook lands."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
from sqlalchemy import func, select

from modelux_server.models import Notification, Organization
from tests.billing.stripe_world import StripeWorld
from tests.conftest import Org
from tests.dashboard.forms import browser, sign_up

T = TypeVar("T")


def _run(world: StripeWorld, step: Callable[[], Awaitable[T]]) -> T:
    """Dashboard requests go in-process to the live server's app, on its loop."""

    async def go() -> T:
        return await step()

    result: T = world.server.call(go())
    return result


def _signed_up(world: StripeWorld, client: httpx.AsyncClient, name: str, email: str) -> Org:
    async def step() -> str:
        r = await sign_up(client, org=name, email=email)
        assert r.status_code == 303, r.text
        async with world.rt.db.session() as session:
            stmt = select(Organization.id).where(Organization.name == name)
            return str((await session.execute(stmt)).scalar_one())

    org_id = _run(world, step)
    return Org(id=org_id, key=world.key(Org(org_id, "", email), "admin"), owner_email=email)


def _checkout(world: StripeWorld, org: Org) -> str:
    with world.api(org) as c:
        r = c.post("/billing/checkout", json={"plan": "pro", "interval": "monthly"})
    assert r.status_code == 200, r.text
    return str(r.json()["data"]["id"])


def _return_page(
    world: StripeWorld, client: httpx.AsyncClient, session_id: str, *, from_stripe: bool = True
) -> httpx.Response:
    """Open the success URL: as Stripe redirects to it, or hand-made with any id."""
    if from_stripe:
        # Stripe sends the customer to success_url with {CHECKOUT_SESSION_ID} replaced
        # (reference: stripe-and-billing-systems.md §1.1, "Checkout for new customers")
        success_url = str(world.emu.get(session_id)["success_url"])
        path = success_url.removeprefix("https://modelux.test").replace("{CHECKOUT_SESSION_ID}", session_id)
    else:
        path = f"/settings/billing?checkout=success&session_id={session_id}"

    async def step() -> httpx.Response:
        return await client.get(path)

    return _run(world, step)


def _receipts(world: StripeWorld, org_id: str) -> int:
    async def count() -> int:
        async with world.rt.db.session() as session:
            stmt = (
                select(func.count())
                .select_from(Notification)
                .where(Notification.org_id == org_id, Notification.kind == "plan_changed")
            )
            return int((await session.execute(stmt)).scalar_one())

    return world.server.call(count())


def _client(world: StripeWorld) -> Any:
    return browser(world.server.app)


def test_the_return_from_checkout_shows_pro_before_the_webhook(world: StripeWorld) -> None:
    cm = _client(world)
    client = _run(world, cm.__aenter__)
    try:
        org = _signed_up(world, client, "Acme", "owner@acme.test")
        session_id = _checkout(world, org)
        world.emu.hold_webhooks()  # the webhook is late
        world.emu.complete_checkout(session_id)

        page = _return_page(world, client, session_id)
        assert page.status_code == 200, page.text
        assert 'id="checkout-pending"' not in page.text
        assert "Your subscription is active. Thanks!" in page.text
        assert world.billing(org)["plan"]["id"] == "pro"
        assert world.state(org.id).stripe_subscription_id == world.emu.get(session_id)["subscription"]
        changes = world.plan_changes(org.id)
        assert [(c.from_plan, c.to_plan, c.source) for c in changes] == [("free", "pro", "api")]
        assert _receipts(world, org.id) == 1

        # the webhook lands later and finds nothing left to do
        results = world.emu.release_webhooks()
        world.emu.wait_for_webhooks()
        assert results and all(r.ok for r in results)
        assert world.billing(org)["plan"]["id"] == "pro"
        assert len(world.plan_changes(org.id)) == 1
        assert _receipts(world, org.id) == 1

        # reloading the return URL changes nothing either
        assert _return_page(world, client, session_id).status_code == 200
        assert len(world.plan_changes(org.id)) == 1
        assert _receipts(world, org.id) == 1
    finally:
        _run(world, lambda: cm.__aexit__(None, None, None))


def test_a_return_with_another_orgs_or_a_garbage_session_changes_nothing(world: StripeWorld) -> None:
    other = world.org("Other", "owner@other.test")
    cm = _client(world)
    client = _run(world, cm.__aenter__)
    try:
        org = _signed_up(world, client, "Acme", "owner@acme.test")
        theirs = _checkout(world, other)
        world.emu.hold_webhooks()
        world.emu.complete_checkout(theirs)

        page = _return_page(world, client, theirs)
        assert page.status_code == 200, page.text
        assert world.billing(org)["plan"]["id"] == "free"
        assert world.state(org.id).stripe_subscription_id is None
        assert world.plan_changes(org.id) == []
        # not even the other organization is touched through our page
        assert world.billing(other)["plan"]["id"] == "free"

        for garbage in ("cs_does_not_exist", "not-a-session", "cs_%27%3B--", "x" * 300):
            r = _return_page(world, client, garbage, from_stripe=False)
            assert r.status_code == 200, (garbage, r.text)
            assert 'id="checkout-pending"' in r.text  # still waiting, as before
            assert "Your subscription is active" not in r.text
        assert world.billing(org)["plan"]["id"] == "free"

        world.emu.release_webhooks()
        world.emu.wait_for_webhooks()
        assert world.billing(other)["plan"]["id"] == "pro"
        assert world.billing(org)["plan"]["id"] == "free"
    finally:
        _run(world, lambda: cm.__aexit__(None, None, None))
