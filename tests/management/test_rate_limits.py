"""A management key's requests per minute (/manage/v1 and /mcp), on both limiter backends.

The test clock stands still, so a key's minute only moves when the test moves it.
"""

from __future__ import annotations

from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelux_server.app import create_app
from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from modelux_server.management_key.service import issue_management_key
from modelux_server.services import Services
from tests.conftest import Org, make_org
from tests.support.plans import move_to
from tests.support.redis import redis_url_or_skip

DEFAULT_PER_MINUTE = Settings.model_fields["rate_limit_management_key_per_minute"].default
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "rate-limit-test", "version": "1"},
    },
}
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@pytest.fixture(params=["local", "redis"])
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    # the real default (tests/conftest.py raises it for every other suite)
    update: dict[str, Any] = {"rate_limit_management_key_per_minute": DEFAULT_PER_MINUTE}
    if request.param == "redis":
        update["redis_url"] = redis_url_or_skip()
    return settings.model_copy(update=update)


async def second_key(rt: Services, org: Org) -> str:
    async with rt.db.session() as session:
        _, token = await issue_management_key(session, rt, org.id, name="ci", role="admin", created_by=None)
    return token


async def test_the_61st_call_in_a_minute_is_a_429_that_changed_nothing(
    client: httpx.AsyncClient, org: Org, rt: Services, clock: FrozenClock
) -> None:
    assert DEFAULT_PER_MINUTE == 60
    other_key = await second_key(rt, org)
    for n in range(60):
        r = await client.get("/manage/v1/projects", headers=org.headers)
        assert r.status_code == 200, (n, r.text)
        assert r.headers["x-ratelimit-limit-requests"] == "60"
        assert r.headers["x-ratelimit-remaining-requests"] == str(59 - n)
    assert r.headers["x-ratelimit-reset-requests"] == "1m0s"

    refused = await client.post("/manage/v1/projects", json={"name": "too fast"}, headers=org.headers)
    assert refused.status_code == 429
    assert refused.json() == {
        "error": {
            "type": "rate_limit_error",
            "code": "rate_limited",
            "message": refused.json()["error"]["message"],
            "limit": {"name": "requests_per_minute", "limit": 60, "scope": "management_key"},
        }
    }
    assert "60 requests per minute" in refused.json()["error"]["message"]
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["x-ratelimit-limit-requests"] == "60"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"

    # per key: another key of the same organization has its own minute
    other = await client.get("/manage/v1/projects", headers={"Authorization": f"Bearer {other_key}"})
    assert other.status_code == 200 and other.headers["x-ratelimit-remaining-requests"] == "59"

    clock.advance(timedelta(seconds=1))  # one request's worth comes back
    listed = await client.get("/manage/v1/projects", headers=org.headers)
    assert listed.status_code == 200 and listed.json()["data"] == []  # the refused POST created nothing
    assert (await client.get("/manage/v1/projects", headers=org.headers)).status_code == 429


async def test_a_bad_key_is_a_401_not_a_429_and_costs_no_allowance(
    client: httpx.AsyncClient, org: Org
) -> None:
    for _ in range(70):
        r = await client.get("/manage/v1/projects", headers={"Authorization": "Bearer mlx_mk_wrong"})
        assert r.status_code == 401
    r = await client.get("/manage/v1/projects", headers=org.headers)
    assert r.status_code == 200 and r.headers["x-ratelimit-remaining-requests"] == "59"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_mcp_over_http_shares_the_keys_allowance(
    client: httpx.AsyncClient, org: Org, clock: FrozenClock
) -> None:
    for _ in range(59):
        assert (await client.get("/manage/v1/billing", headers=org.headers)).status_code == 200
    last = await client.post("/mcp", json=INITIALIZE, headers={**org.headers, **MCP_HEADERS})
    assert last.status_code == 200, last.text
    assert last.json()["result"]["serverInfo"]
    assert last.headers["x-ratelimit-remaining-requests"] == "0"

    refused = await client.post("/mcp", json=INITIALIZE, headers={**org.headers, **MCP_HEADERS})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.json()["error"]["limit"]["scope"] == "management_key"
    assert refused.headers["retry-after"] == "1"
    assert "www-authenticate" not in refused.headers

    clock.advance(timedelta(seconds=1))
    again = await client.post("/mcp", json=INITIALIZE, headers={**org.headers, **MCP_HEADERS})
    assert again.status_code == 200, again.text


async def test_a_plan_in_the_catalog_sets_its_own_management_key_limit(
    settings: Settings, clock: FrozenClock, tmp_path: Path
) -> None:
    catalog = tmp_path / "plans.toml"
    source = resources.files("modelux_server.plans").joinpath("plans.toml").read_text()
    catalog.write_text(
        source.replace(
            "rate_limits = { project_key_per_minute = 1200 }",
            "rate_limits = { project_key_per_minute = 1200, management_key_per_minute = 3 }",
        )
    )
    app = create_app(settings.model_copy(update={"plan_catalog": catalog}), clock=clock)
    async with app.router.lifespan_context(app):
        rt: Services = app.state.services
        free, pro = await make_org(rt), await make_org(rt, "Globex", "owner@globex.test")
        await move_to(rt, pro.id, "pro")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            pro_codes = [
                (await c.get("/manage/v1/billing", headers=pro.headers)).status_code for _ in range(4)
            ]
            free_codes = [
                (await c.get("/manage/v1/billing", headers=free.headers)).status_code for _ in range(4)
            ]
    assert pro_codes == [200, 200, 200, 429]
    assert free_codes == [200] * 4  # Free sets none: the setting's 60


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("value", [0, -1, 100_001, 1.5, "60", True, {}])
async def test_a_keys_own_limit_must_be_a_whole_number_in_range(
    client: httpx.AsyncClient, org: Org, value: object
) -> None:
    project = (await client.post("/manage/v1/projects", json={"name": "p"}, headers=org.headers)).json()
    body = {"project_id": project["data"]["id"], "rate_limit_per_minute": value}
    made = await client.post("/manage/v1/api-keys", json=body, headers=org.headers)
    assert made.status_code == 422, made.text
    assert made.json()["error"]["param"] == "rate_limit_per_minute"
    body["rate_limit_per_minute"] = 100_000
    key = (await client.post("/manage/v1/api-keys", json=body, headers=org.headers)).json()["data"]
    assert key["rate_limit_per_minute"] == 100_000
    changed = await client.patch(
        f"/manage/v1/api-keys/{key['id']}", json={"rate_limit_per_minute": value}, headers=org.headers
    )
    assert changed.status_code == 422, changed.text
    renamed = await client.patch(f"/manage/v1/api-keys/{key['id']}", json={"name": "ci"}, headers=org.headers)
    assert renamed.json()["data"]["name"] == "ci"
    assert renamed.json()["data"]["rate_limit_per_minute"] == 100_000  # a PATCH changes what it names
