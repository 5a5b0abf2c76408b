"""Ensemble members answer to the egress policy like single and fallback targets.

A member whose credential points where the policy refuses makes the whole
request a 422 `egress_not_allowed`: before admission (not counted, no member
called) when the stored base_url is refused, and when the refusal only comes
at connect time (a name that resolves elsewhere by then) the answer is the
same 422, not a 502 `ensemble_failed` that would blame the upstreams.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from modelux_server.kit.egress import EgressGuard
from modelux_server.services import Services
from tests.conftest import Org, make_org
from tests.security.egress_support import FakeResolver, requests_used, serving, stored_credential
from tests.support.fake_upstream import FakeUpstream
from tests.support.plans import move_to

# only the fake upstream's own address is admitted, not the rest of 127.0.0.0/8
ONLY_THE_FAKE = "127.0.0.1"
CHAT = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _clean(upstream: FakeUpstream) -> None:
    upstream.reset()


async def _ensemble_tenant(
    client: httpx.AsyncClient, rt: Services, good_url: str, bad_url: str
) -> tuple[Org, str]:
    """An organization whose `@vote` ensemble has a reachable member and one at `bad_url`."""
    org = await make_org(rt)
    await move_to(rt, org.id, "pro")  # ensembles
    project = (await client.post("/manage/v1/projects", json={"name": "app"}, headers=org.headers)).json()
    project_id = project["data"]["id"]
    key = (
        await client.post("/manage/v1/api-keys", json={"project_id": project_id}, headers=org.headers)
    ).json()["data"]["key"]
    good = await client.post(
        "/manage/v1/providers",
        json={"vendor": "openai", "name": "good", "api_key": "sk-test-0000", "base_url": good_url},
        headers=org.headers,
    )
    assert good.status_code == 201, good.text
    # written past the save-time check, as a row saved under a wider policy would be
    bad_id = await stored_credential(rt, org.id, bad_url, name="bad")
    members = [
        {"model": "openai/gpt-fake", "provider_id": good.json()["data"]["id"]},
        {"model": "openai/gpt-fake", "provider_id": bad_id},
    ]
    r = await client.post(
        "/manage/v1/routing-configs",
        json={"project_id": project_id, "slug": "vote", "strategy": "ensemble", "members": members},
        headers=org.headers,
    )
    assert r.status_code == 201, r.text
    return org, key


def _refused(r: httpx.Response) -> None:
    assert r.status_code == 422, r.text
    error: dict[str, Any] = r.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "egress_not_allowed",
        "model",
    )


async def test_a_refused_member_refuses_the_ensemble_before_admission(
    settings: Settings, clock: FrozenClock, upstream: FakeUpstream
) -> None:
    async with serving(settings, clock, egress_allow=ONLY_THE_FAKE) as (client, rt):
        org, key = await _ensemble_tenant(client, rt, f"{upstream.url}/v1", "http://10.0.0.1/v1")
        for body in ({"model": "@vote", **CHAT}, {"model": "@vote", "stream": True, **CHAT}):
            r = await client.post(
                "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            _refused(r)
        assert await requests_used(client, org) == 0
    assert upstream.requests == []  # not even the admitted member was called


async def test_a_member_refused_at_connect_time_is_a_422_not_ensemble_failed(
    settings: Settings, clock: FrozenClock, upstream: FakeUpstream
) -> None:
    port = upstream.url.rsplit(":", 1)[1]

    async def public_answer(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    async with serving(settings, clock, egress_allow=ONLY_THE_FAKE) as (client, rt):
        state = rt.proxy
        # the pre-admission lookup sees a public address, the connection's lookup 127.0.0.2
        state.executor.egress = EgressGuard(state.executor.egress.policy, resolve=public_answer)
        state.registry.client.inner_resolver = FakeResolver({}, default="127.0.0.2")
        org, key = await _ensemble_tenant(
            client, rt, f"{upstream.url}/v1", f"http://rebound.example:{port}/v1"
        )
        for body in ({"model": "@vote", **CHAT}, {"model": "@vote", "stream": True, **CHAT}):
            r = await client.post(
                "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            _refused(r)
