"""/admin/v1 on SQLite and PostgreSQL: the operator finds organizations, gives one an
Enterprise plan, edits it (features off and back on), suspends it; tokens and the off switch."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from modelux_server.config import Settings
from modelux_server.services import Services
from tests.conftest import Org, make_org

SECRET = "op-secret-0123456789abcdefghij"
ALICE = {"Authorization": f"Bearer {SECRET}"}
ENSEMBLE = {
    "strategy": "ensemble",
    "members": [{"model": "openai/gpt-4o-mini"}, {"model": "openai/gpt-4o"}],
    "aggregation": "majority_vote",
}
PLAN = {
    "name": "Acme Enterprise",
    "limits": {"monthly_requests": "unlimited", "projects": 500},
    "features": ["ensembles", "custom_routing_rules", "audit_log", "sso"],
    "region": "eu",
    "price": {"amount": "120000.00", "currency": "usd", "interval": "annual"},
    "contract": {"start": "2026-12-01", "end": "2027-11-30", "auto_renew": True, "notice_days": 60},
    "payment": {"method": "invoice", "net_days": 30, "po_number": "PO-7781"},
    "billing_contact": {"name": "Ada Payables", "email": "ap@acme.test"},
    "support_channel": "Slack #acme-modelux",
    "sla": {"uptime_percent": "99.95", "response_minutes": {"sev1": 30, "sev2": 120}},
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"admin_token": f"alice:{SECRET}"})


async def _admin(client: httpx.AsyncClient, method: str, path: str, **kw: Any) -> httpx.Response:
    return await client.request(method, f"/admin/v1{path}", headers=ALICE, **kw)


async def test_the_operator_finds_an_organization_by_owner_email(
    client: httpx.AsyncClient, rt: Services, org: Org
) -> None:
    other = await make_org(rt, name="Globex", email="hank@globex.test")
    r = await _admin(client, "GET", "/organizations", params={"search": "HANK@globex"})
    assert r.status_code == 200, r.text
    found = r.json()["data"]
    assert [o["id"] for o in found] == [other.id]
    assert found[0]["owners"] == ["hank@globex.test"] and found[0]["plan"]["id"] == "free"
    # a LIKE wildcard in the search is a literal character, not "anything"
    assert (await _admin(client, "GET", "/organizations", params={"search": "%"})).json()["data"] == []
    listed = (await _admin(client, "GET", "/organizations", params={"limit": 1})).json()
    assert len(listed["data"]) == 1 and listed["has_more"] is True
    rest = (await _admin(client, "GET", "/organizations", params={"cursor": listed["next_cursor"]})).json()
    assert {o["id"] for o in listed["data"] + rest["data"]} == {org.id, other.id}

    one = (await _admin(client, "GET", "/organizations/owner@acme.test")).json()["data"]
    assert one["id"] == org.id and one["usage"]["monthly_requests"]["used"] == 0
    assert one["billing"]["plan"]["id"] == "free" and one["invoices"] == []


async def test_a_name_several_organizations_share_is_ambiguous(
    client: httpx.AsyncClient, rt: Services
) -> None:
    a = await make_org(rt, name="Twin", email="a@twin.test")
    b = await make_org(rt, name="twin", email="b@twin.test")
    r = await _admin(client, "GET", "/organizations/Twin")
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "ambiguous_organization" and sorted(error["candidates"]) == sorted([a.id, b.id])
    assert (await _admin(client, "GET", "/organizations/nobody@nowhere.test")).status_code == 404


async def test_an_enterprise_plan_is_versioned_and_a_removed_feature_stops_at_once(
    client: httpx.AsyncClient, org: Org
) -> None:
    r = await _admin(client, "POST", f"/organizations/{org.id}/enterprise-plan", json=PLAN)
    assert r.status_code == 201, r.text
    plan = r.json()["data"]
    assert plan["version"] == 1 and plan["limits"]["monthly_requests"] is None
    assert plan["price"] == {
        "amount": "120000.00",
        "currency": "usd",
        "interval": "annual",
        "minimum_commitment": None,
    }
    assert plan["payment"] == {"method": "invoice", "net_days": 30, "po_number": "PO-7781"}
    assert plan["sla"] == {"uptime_percent": "99.95", "response_minutes": {"sev1": 30, "sev2": 120}}
    assert plan["created_by"] == "operator:alice"

    billing = (await client.get("/manage/v1/billing", headers=org.headers)).json()["data"]
    assert billing["plan"]["name"] == "Acme Enterprise" and billing["meters"]["monthly_requests"]["unlimited"]
    project = (await client.post("/manage/v1/projects", json={"name": "app"}, headers=org.headers)).json()[
        "data"
    ]
    rc = await client.post(
        "/manage/v1/routing-configs",
        json={"project_id": project["id"], "slug": "vote", **ENSEMBLE},
        headers=org.headers,
    )
    assert rc.status_code == 201, rc.text
    config = rc.json()["data"]

    features = [f for f in PLAN["features"] if f != "ensembles"]
    r = await _admin(client, "PATCH", f"/organizations/{org.id}/enterprise-plan", json={"features": features})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["version"] == 2
    assert r.json()["data"]["changes"] == [{"field": "features", "added": [], "removed": ["ensembles"]}]
    got = (await client.get(f"/manage/v1/routing-configs/{config['id']}", headers=org.headers)).json()["data"]
    assert got["active"] is False and "ensembles" in got["inactive_reason"]
    # the rest of the terms carried over to the new version
    assert r.json()["data"]["price"]["amount"] == "120000.00" and r.json()["data"]["region"] == "eu"

    r = await _admin(
        client, "PATCH", f"/organizations/{org.id}/enterprise-plan", json={"features": PLAN["features"]}
    )
    assert r.json()["data"]["version"] == 3
    got = (await client.get(f"/manage/v1/routing-configs/{config['id']}", headers=org.headers)).json()["data"]
    assert got["active"] is True and got["members"] == config["members"]

    versions = (await _admin(client, "GET", f"/organizations/{org.id}/enterprise-plan/versions")).json()[
        "data"
    ]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[0]["changes"] == [{"field": "features", "added": ["ensembles"], "removed": []}]
    assert versions[2]["changes"] == []
    detail = (await _admin(client, "GET", f"/organizations/{org.id}")).json()["data"]
    assert [a["action"] for a in detail["operator_actions"]][:3] == [
        "enterprise_plan.edited",
        "enterprise_plan.edited",
        "enterprise_plan.created",
    ]
    assert {a["operator"] for a in detail["operator_actions"]} == {"alice"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"limits": {"seats": 5}}, "limits"),
        ({"features": ["teleport"]}, "features"),
        ({"price": {"amount": "-1"}}, "price"),
        ({"price": {"amount": "10.001"}}, "price"),
        ({"price": {"amount": 10, "currency": "dollars"}}, "price.currency"),
        ({"contract": {"start": "2027-01-01", "end": "2026-01-01"}}, "contract"),
        ({"payment": {"method": "invoice", "net_days": 30}}, None),
        ({"billing_contact": {"email": "not-an-address"}}, "billing_contact.email"),
        ({"sla": {"uptime_percent": "99.9", "response_minutes": {"sev9": 5}}}, "sla.response_minutes"),
        ({"support_channel": "line\nbreak"}, "support_channel"),
        ({"contract": {"start": "2026-01-01", "end_plan": "enterprise"}}, "contract.end_plan"),
    ],
)
async def test_bad_plan_terms_get_a_clear_422_and_change_nothing(
    client: httpx.AsyncClient, org: Org, body: dict[str, Any], param: str | None
) -> None:
    r = await _admin(client, "POST", f"/organizations/{org.id}/enterprise-plan", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["message"] and "Traceback" not in r.text
    if param is not None:
        assert (error.get("param") or "").startswith(param.split(".")[0])
    detail = (await _admin(client, "GET", f"/organizations/{org.id}")).json()["data"]
    assert detail["plan"]["id"] == "free" and detail["enterprise_plan"] is None


async def test_a_suspended_organization_gets_403_and_loses_nothing(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    project = (await client.post("/manage/v1/projects", json={"name": "app"}, headers=org.headers)).json()[
        "data"
    ]
    key = (
        await client.post("/manage/v1/api-keys", json={"project_id": project["id"]}, headers=org.headers)
    ).json()["data"]["key"]
    r = await _admin(client, "POST", f"/organizations/{org.id}/suspend", json={"reason": "fraud review"})
    assert r.status_code == 200 and r.json()["data"]["status"] == "suspended"

    api = await client.get("/manage/v1/projects", headers=org.headers)
    assert api.status_code == 403 and api.json()["error"]["code"] == "organization_suspended"
    proxy = await client.post(
        "/v1/chat/completions",
        json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert proxy.status_code == 403 and proxy.json()["error"]["code"] == "organization_suspended"
    suspended = (await _admin(client, "GET", "/organizations", params={"status": "suspended"})).json()["data"]
    assert [o["id"] for o in suspended] == [org.id]

    assert (await _admin(client, "POST", f"/organizations/{org.id}/unsuspend")).status_code == 200
    listed = await client.get("/manage/v1/projects", headers=org.headers)
    assert listed.status_code == 200 and [p["id"] for p in listed.json()["data"]] == [project["id"]]
    detail = (await _admin(client, "GET", f"/organizations/{org.id}")).json()["data"]
    assert [a["action"] for a in detail["operator_actions"]][:2] == [
        "organization.unsuspended",
        "organization.suspended",
    ]
    assert detail["operator_actions"][1]["detail"] == {"reason": "fraud review"}


async def test_a_bad_operator_token_gets_401(client: httpx.AsyncClient, org: Org) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {SECRET}x"},
        {"Authorization": SECRET},
    ):
        r = await client.get("/admin/v1/organizations", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error", headers
        r = await client.post(
            f"/admin/v1/organizations/{org.id}/suspend", content=b"{not json", headers=headers
        )
        assert r.status_code == 401
    # a management key is not an operator token
    assert (await client.get("/admin/v1/organizations", headers=org.headers)).status_code == 401
    assert (await _admin(client, "GET", "/no-such-thing")).status_code == 404


class TestWithTheApiOff:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"admin_token": None})

    async def test_every_admin_path_is_404(self, client: httpx.AsyncClient, org: Org) -> None:
        for method, path, body in (
            ("GET", "/admin/v1/organizations", None),
            ("GET", f"/admin/v1/organizations/{org.id}", None),
            ("POST", f"/admin/v1/organizations/{org.id}/suspend", b"{broken"),
            ("PATCH", f"/admin/v1/organizations/{org.id}/enterprise-plan", b"[]"),
            ("GET", "/admin/v1/anything/else", None),
        ):
            r = await client.request(method, path, headers=ALICE, content=body)
            assert r.status_code == 404, (method, path, r.text)
        assert (await client.get("/manage/v1/projects", headers=org.headers)).status_code == 200


@pytest.mark.parametrize("reason", ["two\nlines", "del\x7fchar", "x" * 501, "   "])
async def test_a_suspension_reason_is_one_printable_line(
    client: httpx.AsyncClient, org: Org, reason: str
) -> None:
    r = await _admin(client, "POST", f"/organizations/{org.id}/suspend", json={"reason": reason})
    assert r.status_code == 422 and r.json()["error"]["param"] == "reason", r.text
    assert (await client.get("/manage/v1/projects", headers=org.headers)).status_code == 200
