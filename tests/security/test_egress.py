"""The egress policy: provider base_urls cannot reach non-public destinations.

Saved credentials are checked when they are saved (REST here; MCP in
tests/mcp/test_provider_urls.py), again before a proxied call is admitted, and on
the address actually connected to. The default allows only public addresses;
`MODELUX_EGRESS_ALLOW` widens it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from modelux_server.config import Settings, SettingsError, load_settings
from modelux_server.kit.clock import FrozenClock
from modelux_server.kit.egress import EgressGuard, EgressPolicy
from modelux_server.models import ProviderCredential
from modelux_server.proxy.providers import ProviderRegistry, UpstreamCredential, UpstreamRefused
from modelux_server.services import Services
from tests.conftest import Org, make_org
from tests.dashboard.forms import browser, post_form, sign_up
from tests.security.egress_support import FakeResolver, requests_used, serving, stored_credential
from tests.support.fake_upstream import FakeUpstream

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _clean(upstream: FakeUpstream) -> None:
    upstream.reset()


async def provider_count(rt: Services) -> int:
    async with rt.db.session() as session:
        return int((await session.execute(select(func.count()).select_from(ProviderCredential))).scalar_one())


def refused(r: httpx.Response, code: str, param: str | None) -> dict[str, Any]:
    assert r.status_code == 422, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == code, error
    assert error.get("param") == param and isinstance(error["message"], str)
    return error


def provider(base_url: str, vendor: str = "openai_compatible") -> dict[str, str]:
    return {"vendor": vendor, "name": "up", "api_key": "sk-test-0000", "base_url": base_url}


# -- the policy itself ------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fd00::1",
        "fec0::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a00:1",
        "2002:7f00:1::1",
        "2001:db8::1",
    ],
)
def test_non_public_addresses_are_refused_by_default(address: str) -> None:
    assert not EgressPolicy().admits_address(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "::ffff:8.8.8.8"])
def test_public_addresses_are_admitted_by_default(address: str) -> None:
    assert EgressPolicy().admits_address(address)


def test_the_allow_list_admits_cidrs_addresses_and_names() -> None:
    policy = EgressPolicy.parse(" 127.0.0.0/8 , 10.0.0.5,[::1], vLLM.Internal. ")
    assert policy.admits_address("127.0.0.2") and policy.admits_address("::ffff:127.0.0.1")
    assert policy.admits_address("10.0.0.5") and not policy.admits_address("10.0.0.6")
    assert policy.admits_address("::1") and not policy.admits_address("169.254.169.254")
    assert policy.admits_name("vllm.internal") and not policy.admits_name("localhost")


def test_a_bad_allow_list_stops_the_service_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="MODELUX_EGRESS_ALLOW"):
        load_settings(egress_allow="10.0.0.0/8,not a host!")


# -- at save time -----------------------------------------------------------------

REFUSED_DESTINATIONS = [
    "http://127.0.0.1:8080/v1",
    "http://10.0.0.1/v1",
    "http://169.254.169.254/latest/meta-data",
    "http://100.64.0.1/v1",
    "http://0.0.0.0:8080/v1",
    "http://[::1]:8080/v1",
    "http://[::ffff:127.0.0.1]/v1",
    "http://[fd00::1]/v1",
    "http://localhost:8080/v1",  # a name that resolves to loopback
    "http://LOCALHOST/v1",
]
MALFORMED = [
    "file:///etc/passwd",
    "ftp://8.8.8.8/v1",
    "http:///v1",
    "",
    "http://u:p@8.8.8.8/v1",
    "http://token@8.8.8.8/v1",
    "https://8.8.8.8/v1?",
    "https://8.8.8.8/v1?target=/manage/v1",
    "https://8.8.8.8/v1#frag",
    "https://8.8.8.8/" + "a" * 600,
    "http://127.1/v1",
    "http://2130706433/v1",
    "http://0x7f000001/v1",
    "http://8.8.8.8:99999/v1",
    "http://8.8.8.8/\tv1",
    "http://8.8.8.8/v1\\@127.0.0.1",
    "http://bad_host!/v1",
    "http://пример.рф/v1",
]


async def test_non_public_base_urls_are_refused_at_save_and_nothing_is_stored(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    for base_url in REFUSED_DESTINATIONS:
        r = await client.post("/manage/v1/providers", json=provider(base_url), headers=org.headers)
        error = refused(r, "egress_not_allowed", "base_url")
        assert "egress policy" in error["message"] and "MODELUX_" not in error["message"]
    for base_url in MALFORMED:
        r = await client.post("/manage/v1/providers", json=provider(base_url), headers=org.headers)
        refused(r, "invalid_base_url", "base_url")
    r = await client.post(
        "/manage/v1/providers", json=provider("http://nowhere.invalid/v1"), headers=org.headers
    )
    refused(r, "unresolvable_host", "base_url")
    assert await provider_count(rt) == 0
    # a public address is fine by default, and the slot count was not spent by refusals
    ok = await client.post("/manage/v1/providers", json=provider("https://8.8.8.8/v1/"), headers=org.headers)
    assert ok.status_code == 201, ok.text
    assert ok.json()["data"]["base_url"] == "https://8.8.8.8/v1"


async def test_the_allow_list_admits_private_upstreams_at_save(
    settings: Settings, clock: FrozenClock
) -> None:
    allowed = settings.model_copy(update={"egress_allow": "127.0.0.0/8,10.0.0.5,vllm.internal"})
    async with serving(allowed, clock) as (client, rt):
        org = await make_org(rt)
        r = await client.post(
            "/manage/v1/providers", json=provider("http://10.0.0.6/v1"), headers=org.headers
        )
        refused(r, "egress_not_allowed", "base_url")
        # names on the list are admitted without a lookup (this one resolves nowhere)
        for base_url in ("http://127.0.0.1:8000/v1", "http://10.0.0.5/v1", "http://vllm.internal:8000/v1"):
            r = await client.post("/manage/v1/providers", json=provider(base_url), headers=org.headers)
            assert r.status_code == 201, r.text
            assert r.json()["data"]["base_url"] == base_url
            # Free holds two credentials: make room for the next one
            deleted = await client.delete(
                f"/manage/v1/providers/{r.json()['data']['id']}", headers=org.headers
            )
            assert deleted.status_code == 200


async def test_changing_base_url_needs_the_api_key_again(client: httpx.AsyncClient, org: Org) -> None:
    created = await client.post(
        "/manage/v1/providers", json=provider("https://8.8.8.8/v1"), headers=org.headers
    )
    pid = created.json()["data"]["id"]
    url = f"/manage/v1/providers/{pid}"

    moved = await client.patch(url, json={"base_url": "https://1.1.1.1/v1"}, headers=org.headers)
    refused(moved, "api_key_required", "api_key")
    cleared = await client.patch(url, json={"base_url": None}, headers=org.headers)
    refused(cleared, "api_key_required", "api_key")
    private = await client.patch(
        url, json={"base_url": "http://169.254.169.254/v1", "api_key": "sk-new-1111"}, headers=org.headers
    )
    refused(private, "egress_not_allowed", "base_url")
    query = await client.patch(
        url, json={"base_url": "https://1.1.1.1/v1?x", "api_key": "sk-new-1111"}, headers=org.headers
    )
    refused(query, "invalid_base_url", "base_url")
    assert (await client.get(url, headers=org.headers)).json()["data"]["base_url"] == "https://8.8.8.8/v1"

    same = await client.patch(url, json={"base_url": "https://8.8.8.8/v1/", "name": "n"}, headers=org.headers)
    assert same.status_code == 200, same.text
    both = await client.patch(
        url, json={"base_url": "https://1.1.1.1/v1", "api_key": "sk-new-2222"}, headers=org.headers
    )
    assert both.status_code == 200, both.text
    assert both.json()["data"]["base_url"] == "https://1.1.1.1/v1"
    assert both.json()["data"]["hint"].endswith("2222")


# -- at request time --------------------------------------------------------------


async def _tenant(client: httpx.AsyncClient, rt: Services, base_url: str) -> tuple[Org, str]:
    org = await make_org(rt)
    project = (await client.post("/manage/v1/projects", json={"name": "app"}, headers=org.headers)).json()
    key = (
        await client.post(
            "/manage/v1/api-keys", json={"project_id": project["data"]["id"]}, headers=org.headers
        )
    ).json()["data"]["key"]
    r = await client.post("/manage/v1/providers", json=provider(base_url, "openai"), headers=org.headers)
    assert r.status_code == 201, r.text
    return org, key


async def test_a_credential_saved_while_allowed_is_refused_before_admission_once_disallowed(
    settings: Settings, clock: FrozenClock, upstream: FakeUpstream
) -> None:
    allowed = settings.model_copy(update={"egress_allow": "127.0.0.0/8"})
    async with serving(allowed, clock) as (client, rt):
        org, key = await _tenant(client, rt, f"{upstream.url}/v1")
        r = await client.post(
            "/v1/chat/completions",
            json={"model": "gpt-fake", **CHAT},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert r.status_code == 200, r.text
        assert await requests_used(client, org) == 1
    calls = len(upstream.requests)

    # the operator removes the allow-list and restarts
    async with serving(settings, clock) as (client, rt):
        for body in ({"model": "gpt-fake", **CHAT}, {"model": "gpt-fake", "stream": True, **CHAT}):
            r = await client.post(
                "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            refused(r, "egress_not_allowed", "model")
        r = await client.post(
            "/v1/embeddings",
            json={"model": "text-embedding-fake", "input": "x"},
            headers={"Authorization": f"Bearer {key}"},
        )
        refused(r, "egress_not_allowed", "model")
        assert await requests_used(client, org) == 1
    assert len(upstream.requests) == calls


@pytest.mark.parametrize(
    "base_url",
    [
        "http://localhost:{port}/v1",
        "http://127.0.0.1:{port}/v1",
        "http://[::ffff:127.0.0.1]:{port}/v1",
        "file:///etc/passwd",
        "http://u:p@127.0.0.1:{port}/v1",
        "http://u:p@8.8.8.8/v1",
    ],
)
async def test_a_stored_row_that_skipped_the_save_check_is_refused_before_admission(
    settings: Settings, clock: FrozenClock, upstream: FakeUpstream, base_url: str
) -> None:
    port = upstream.url.rsplit(":", 1)[1]
    async with serving(settings, clock) as (client, rt):
        org = await make_org(rt)
        project = (await client.post("/manage/v1/projects", json={"name": "app"}, headers=org.headers)).json()
        key = (
            await client.post(
                "/manage/v1/api-keys", json={"project_id": project["data"]["id"]}, headers=org.headers
            )
        ).json()["data"]["key"]
        await stored_credential(rt, org.id, base_url.format(port=port))
        r = await client.post(
            "/v1/chat/completions",
            json={"model": "gpt-fake", **CHAT},
            headers={"Authorization": f"Bearer {key}"},
        )
        refused(r, "egress_not_allowed", "model")
        assert await requests_used(client, org) == 0
    assert upstream.requests == []


# -- at connect time --------------------------------------------------------------


async def test_the_connect_time_resolver_refuses_a_name_that_resolves_to_loopback(
    upstream: FakeUpstream,
) -> None:
    port = upstream.url.rsplit(":", 1)[1]
    cred = UpstreamCredential("openai", "sk-test", f"http://rebound.example:{port}/v1")
    answers = {"rebound.example": "127.0.0.1"}

    async with ProviderRegistry(resolver=FakeResolver(answers)) as strict:
        for call in (strict.get("openai").chat, strict.get("openai").chat_stream):
            with pytest.raises(UpstreamRefused) as err:
                await call(CHAT, model="gpt-fake", credential=cred, timeout=5)
            assert not err.value.retryable and "127.0.0.1" not in err.value.message
        # a literal never reaches a resolver; it is checked before the request
        literal = UpstreamCredential("openai", "sk-test", f"{upstream.url}/v1")
        hidden = UpstreamCredential("openai", "sk-test", f"http://u:p@127.0.0.1:{port}/v1")
        for target in (literal, hidden):
            with pytest.raises(UpstreamRefused):
                await strict.get("openai").chat(CHAT, model="gpt-fake", credential=target, timeout=5)
    assert upstream.requests == []

    # the same name admitted by the operator, by name or by address, connects
    for allow in ("rebound.example", "127.0.0.0/8"):
        async with ProviderRegistry(egress=EgressPolicy.parse(allow), resolver=FakeResolver(answers)) as reg:
            answer = await reg.get("openai").chat(CHAT, model="gpt-fake", credential=cred, timeout=5)
        assert answer.status == 200
    assert len(upstream.requests) == 2


async def test_a_rebinding_name_is_refused_with_422_on_v1(
    settings: Settings, clock: FrozenClock, upstream: FakeUpstream
) -> None:
    port = upstream.url.rsplit(":", 1)[1]

    async def public_answer(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    async with serving(settings, clock) as (client, rt):
        state = rt.proxy
        # the pre-admission lookup sees a public address, the connection's lookup loopback
        state.executor.egress = EgressGuard(state.executor.egress.policy, resolve=public_answer)
        state.registry.client.inner_resolver = FakeResolver({"rebound.example": "127.0.0.1"})
        org = await make_org(rt)
        project = (await client.post("/manage/v1/projects", json={"name": "app"}, headers=org.headers)).json()
        key = (
            await client.post(
                "/manage/v1/api-keys", json={"project_id": project["data"]["id"]}, headers=org.headers
            )
        ).json()["data"]["key"]
        await stored_credential(rt, org.id, f"http://rebound.example:{port}/v1")
        for body in ({"model": "gpt-fake", **CHAT}, {"model": "gpt-fake", "stream": True, **CHAT}):
            r = await client.post(
                "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            refused(r, "egress_not_allowed", "model")
    assert upstream.requests == []


async def test_the_dashboard_provider_form_applies_the_same_rules(app: Any, rt: Services) -> None:
    async with browser(app) as client:
        await sign_up(client)
        for base_url, shown in (
            ("http://169.254.169.254/latest", "is not a public address"),
            ("http://u:p@8.8.8.8/v1", "must not contain a user name or password"),
            ("file:///etc/passwd", "must be an http:// or https:// URL"),
        ):
            form = {
                "vendor": "openai_compatible",
                "name": "x",
                "api_key": "sk-test-0000",
                "base_url": base_url,
            }
            r = await post_form(client, "/providers", "/providers/create", form)
            assert r.status_code == 422 and shown in r.text, r.text
        ok = await post_form(
            client,
            "/providers",
            "/providers/create",
            {"vendor": "openai", "name": "x", "api_key": "sk-test-0000", "base_url": "https://8.8.8.8/v1"},
        )
        assert ok.status_code == 303
    assert await provider_count(rt) == 1
