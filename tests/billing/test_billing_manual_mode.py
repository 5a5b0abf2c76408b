"""Without a Stripe key (the embedded default) self-serve payment answers one clear 409."""

from __future__ import annotations

import httpx

from modelux_server.management_key.service import issue_management_key
from modelux_server.services import Services
from tests.conftest import Org
from tests.support.plans import move_to


async def test_checkout_portal_and_change_plan_say_billing_is_not_configured(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    calls = [
        ("/manage/v1/billing/checkout", {"plan": "pro", "interval": "monthly"}),
        ("/manage/v1/billing/portal", {}),
        ("/manage/v1/billing/change-plan", {"plan": "team", "interval": "annual"}),
    ]
    for path, body in calls:
        r = await client.post(path, json=body, headers=org.headers)
        assert r.status_code == 409, (path, r.text)
        error = r.json()["error"]
        assert error["code"] == "billing_not_configured"
        assert "managed by your administrator" in error["message"]
        assert "MODELUX_" not in error["message"] and "modelux admin" not in error["message"]
    # the operator's way still works, and the summary says which mode is on
    await move_to(rt, org.id, "team")
    billing = (await client.get("/manage/v1/billing", headers=org.headers)).json()["data"]
    assert billing["plan"]["id"] == "team" and billing["billing_mode"] == "manual"


async def test_a_member_key_may_read_billing_but_not_change_it(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    async with rt.db.session() as session:
        _, member = await issue_management_key(session, rt, org.id, name="m", role="member", created_by=None)
    headers = {"Authorization": f"Bearer {member}"}
    assert (await client.get("/manage/v1/billing", headers=headers)).status_code == 200
    bodies = {"checkout": {"plan": "pro"}, "portal": {}, "change-plan": {"plan": "pro"}}
    for path, body in bodies.items():
        r = await client.post(f"/manage/v1/billing/{path}", json=body, headers=headers)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"]["type"] == "permission_error"


async def test_a_webhook_without_stripe_configured_is_refused(client: httpx.AsyncClient) -> None:
    r = await client.post("/webhooks/stripe", content=b"{}", headers={"Stripe-Signature": "t=1,v1=00"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_signature"
