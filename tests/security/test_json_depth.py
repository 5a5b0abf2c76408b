"""Deeply nested JSON is a 400 everywhere a body is parsed, never a RecursionError."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from modelux_server.kit.json_depth import MAX_DEPTH, too_deep
from tests.conftest import Org
from tests.dashboard.forms import browser, sign_up, submit_routing_form


def nested(depth: int, inner: str = "") -> str:
    return "[" * depth + inner + "]" * depth


def depth_of(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    return 0


@pytest.mark.parametrize(
    "text",
    [
        nested(MAX_DEPTH),
        nested(MAX_DEPTH + 1),
        '{"a": "' + "[" * 500 + '"}',  # brackets inside a string do not nest
        '["\\"' + "[" * 500 + '"]',  # nor after an escaped quote
        '{"a": [' * 64 + "1" + "]}" * 64,
        '{"a": [' * 65 + "1" + "]}" * 65,
        json.dumps([[1, [2, [3]]], {"k": [[[[]]]]}] * 200),  # many brackets, shallow
    ],
)
def test_too_deep_agrees_with_the_parsed_depth(text: str) -> None:
    assert too_deep(text.encode()) == (depth_of(json.loads(text)) > MAX_DEPTH)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 500, 900, 1100])
async def test_the_management_api_answers_400_for_deep_bodies(
    client: httpx.AsyncClient, org: Org, depth: int
) -> None:
    for path, body in [
        ("/manage/v1/projects", '{"name": ' + nested(depth) + "}"),
        (
            "/manage/v1/routing-configs",
            '{"slug": "s", "strategy": "fallback", "targets": ' + nested(depth) + "}",
        ),
    ]:
        r = await client.post(path, content=body, headers={**org.headers, "content-type": "application/json"})
        assert r.status_code == 400, (depth, path, r.text)
        assert r.json()["error"]["code"] == "body_too_deep"
        assert r.json()["error"]["type"] == "invalid_request_error"
    r = await client.post(
        "/manage/v1/projects", content='{"name": "x", "k": ' + nested(depth) + "}", headers=org.headers
    )  # no content type: FastAPI still reads JSON
    assert r.status_code == 400 and r.json()["error"]["code"] == "body_too_deep"
    assert (await client.get("/manage/v1/projects", headers=org.headers)).json()["data"] == []


async def test_the_management_api_still_validates_bodies_at_the_limit(
    client: httpx.AsyncClient, org: Org
) -> None:
    r = await client.post(
        "/manage/v1/projects",
        content='{"name": ' + nested(MAX_DEPTH - 1) + "}",
        headers={**org.headers, "content-type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["error"]["param"] == "name"


async def test_the_dashboard_routing_form_refuses_deep_fields(app: Any) -> None:
    async with browser(app) as client:
        await sign_up(client)
        r = await submit_routing_form(
            client, slug="deep", strategy="single", fields='{"model": ' + nested(1100) + "}"
        )
        assert r.status_code == 422, r.text[:300]
        assert "nests deeper than 128 levels" in r.text
        assert 'data-testid="rc-deep"' not in (await client.get("/routing-configs")).text
