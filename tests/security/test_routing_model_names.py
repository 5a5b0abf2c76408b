"""Model names in routing configs obey the proxy's rule for `model`.

A config's model names end up in request-log rows, log lines and response
headers exactly like a `model` a caller sends, so a line break, control
character or NUL is refused when the config is saved (REST and the dashboard
form alike), with `param` naming the field, and nothing is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from modelux_server.services import Services
from tests.conftest import Org
from tests.dashboard.forms import browser, sign_up, submit_routing_form
from tests.support.plans import move_to

PRINTABLE = "must be at most 256 printable characters"


@pytest.fixture(autouse=True)
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.WARNING)
    yield
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not logged, [r.getMessage() for r in logged]


async def _stored(rt: Services) -> tuple[int, int]:
    async with rt.db.session() as session:
        configs = (await session.execute(text("SELECT count(*) FROM routing_configs"))).scalar_one()
        versions = (await session.execute(text("SELECT count(*) FROM routing_config_versions"))).scalar_one()
    return int(configs), int(versions)


@pytest.fixture
async def project_id(client: httpx.AsyncClient, org: Org, rt: Services) -> str:
    await move_to(rt, org.id, "team")  # ensembles and custom rules
    r = await client.post("/manage/v1/projects", json={"name": "p"}, headers=org.headers)
    assert r.status_code == 201, r.text
    pid: str = r.json()["data"]["id"]
    return pid


LINE_BREAKS = [
    ({"strategy": "single", "model": "openai/gpt-4o\r\nX-Forged: 1"}, "model", "invalid_model"),
    (
        {"strategy": "fallback", "targets": [{"model": "openai/gpt-4o"}, {"model": "openai/gpt\r\n"}]},
        "targets.1.model",
        "invalid_model",
    ),
    (
        {"strategy": "ensemble", "members": [{"model": "openai/a"}, {"model": "openai/b\n"}]},
        "members.1.model",
        "invalid_model",
    ),
    ({"strategy": "single", "model": "openai/\u2028gpt"}, "model", "invalid_model"),
    ({"strategy": "single", "model": "openai/" + "m" * 250}, "model", "invalid_model"),
    # `$` in a pattern also matches before a final line break
    (
        {"strategy": "custom_rules", "rules": [{"if": "true", "then": "openai/a\n"}], "else": "openai/b"},
        "rules.0.then",
        "invalid_routing_config",
    ),
    (
        {"strategy": "custom_rules", "rules": [{"if": "true", "then": "openai/a"}], "else": "openai/b\n"},
        "else",
        "invalid_routing_config",
    ),
    (
        {"strategy": "single", "model": "openai/gpt-4o", "provider_id": "prov_1\r\n"},
        "provider_id",
        "invalid_routing_config",
    ),
]


@pytest.mark.parametrize(("fields", "param", "code"), LINE_BREAKS)
async def test_the_api_refuses_control_characters_in_config_model_names(
    client: httpx.AsyncClient,
    org: Org,
    rt: Services,
    project_id: str,
    fields: dict[str, Any],
    param: str,
    code: str,
) -> None:
    before = await _stored(rt)
    r = await client.post(
        "/manage/v1/routing-configs",
        json={"project_id": project_id, "slug": "main", **fields},
        headers=org.headers,
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param)
    assert "\n" not in error["message"] and "\r" not in error["message"]
    assert await _stored(rt) == before


async def test_the_api_refuses_nul_in_a_target_model(
    client: httpx.AsyncClient, org: Org, rt: Services, project_id: str
) -> None:
    before = await _stored(rt)
    r = await client.post(
        "/manage/v1/routing-configs",
        json={
            "project_id": project_id,
            "slug": "main",
            "strategy": "fallback",
            "targets": [{"model": "openai/gpt-4o"}, {"model": "openai/gpt\u0000"}],
        },
        headers=org.headers,
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_characters"
    assert r.json()["error"]["param"].startswith("targets")
    assert await _stored(rt) == before


async def test_a_slug_with_a_final_line_break_is_refused(
    client: httpx.AsyncClient, org: Org, rt: Services, project_id: str
) -> None:
    r = await client.post(
        "/manage/v1/routing-configs",
        json={"project_id": project_id, "slug": "main\n", "strategy": "single", "model": "openai/gpt-4o"},
        headers=org.headers,
    )
    assert r.status_code == 422 and r.json()["error"]["param"] == "slug", r.text
    assert await _stored(rt) == (0, 0)


async def test_an_update_is_held_to_the_same_rule(
    client: httpx.AsyncClient, org: Org, rt: Services, project_id: str
) -> None:
    # the longest name the proxy accepts is accepted in a config too
    longest = "openai/" + "m" * 249
    r = await client.post(
        "/manage/v1/routing-configs",
        json={"project_id": project_id, "slug": "main", "strategy": "single", "model": longest},
        headers=org.headers,
    )
    assert r.status_code == 201, r.text
    url = f"/manage/v1/routing-configs/{r.json()['data']['id']}"
    before = await _stored(rt)

    moved = await client.patch(
        url, json={"strategy": "fallback", "targets": [{"model": "openai/x\r\n"}]}, headers=org.headers
    )
    assert moved.status_code == 422, moved.text
    assert moved.json()["error"]["param"] == "targets.0.model"
    assert await _stored(rt) == before
    current = (await client.get(url, headers=org.headers)).json()["data"]
    assert (current["version"], current["model"]) == (1, longest)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        # JSON escapes: the form's text holds no NUL or line break, the parsed fields do
        ('{"targets": [{"model": "openai/gpt\\u0000"}]}', "must not contain NUL characters"),
        ('{"targets": [{"model": "openai/gpt\\r\\nX-Forged: 1"}]}', PRINTABLE),
        ('{"targets": [{"model": "openai/gpt-4o", "provider_id": "prov_\\u0000"}]}', "NUL characters"),
    ],
)
async def test_the_dashboard_routing_form_refuses_them_too(
    app: Any, rt: Services, fields: str, says: str
) -> None:
    assert "\x00" not in fields and "\n" not in fields
    async with browser(app) as client:
        assert (await sign_up(client)).status_code == 303
        r = await submit_routing_form(client, slug="main", strategy="fallback", fields=fields)
        assert r.status_code == 422, r.text
        assert says in r.text and "targets.0." in r.text
    assert await _stored(rt) == (0, 0)
