from datetime import UTC, datetime

from modelux_server.plans.catalog import load_catalog
from modelux_server.plans.entitlements import Entitlements

CATALOG = load_catalog()


def ent(plan: str) -> Entitlements:
    return Entitlements(plan=CATALOG.plans[plan], catalog=CATALOG, public_url="https://mx.example")


def test_monthly_limit_402_body_field_by_field() -> None:
    now = datetime(2026, 12, 13, 23, 59, 0, tzinfo=UTC)
    resets = datetime(2026, 12, 14, tzinfo=UTC)
    err = ent("free").limit_error("monthly_requests", 10000, now=now, resets_at=resets)
    body = err.body()["error"]
    assert err.status == 402
    assert body["type"] == "plan_limit_exceeded"
    assert body["code"] == "monthly_requests_exhausted"
    assert body["limit"] == {
        "name": "monthly_requests",
        "limit": 10000,
        "used": 10000,
        "resets_at": "2026-12-14T00:00:00Z",
    }
    assert body["plan"] == "free"
    assert body["upgrade"] == {"plan": "pro", "url": "https://mx.example/settings/billing?plan=pro"}
    assert "10,000" in body["message"] and "Pro" in body["message"]
    assert err.headers["Retry-After"] == "60"


def test_resource_limit_402_has_no_reset() -> None:
    err = ent("pro").limit_error("projects", 5)
    body = err.body()["error"]
    assert body["code"] == "resource_limit_reached"
    assert body["limit"] == {"name": "projects", "limit": 5, "used": 5}
    assert body["upgrade"]["plan"] == "team"
    assert "Retry-After" not in err.headers


def test_limit_on_the_largest_self_serve_plan_points_to_sales() -> None:
    body = ent("team").limit_error("api_keys", 100).body()["error"]
    assert body["upgrade"] is None
    assert "sales" in body["message"].lower()


def test_feature_402_points_to_the_cheapest_plan_with_it() -> None:
    cases = {
        "ensembles": "pro",
        "custom_routing_rules": "team",
        "audit_log": "team",
        "sso": "enterprise",
    }
    for feature, plan in cases.items():
        body = ent("free").feature_error(feature).body()["error"]
        assert body == {
            "type": "feature_not_in_plan",
            "code": "feature_not_in_plan",
            "feature": feature,
            "message": body["message"],
            "plan": "free",
            "upgrade": {"plan": plan, "url": f"https://mx.example/settings/billing?plan={plan}"},
        }
    assert "contact sales" in ent("team").feature_error("scim").message


def test_ensure_room_allows_up_to_the_limit() -> None:
    ent("free").ensure_room("projects", 0)
    try:
        ent("free").ensure_room("projects", 1)
    except Exception as exc:  # noqa: BLE001
        assert getattr(exc, "status", None) == 402
    else:
        raise AssertionError("second project on Free must be refused")
