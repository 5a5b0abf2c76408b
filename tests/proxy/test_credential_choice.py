"""Which provider credential a request spends, through the official `openai` SDK.

`vendor/model` and bare names use the vendor's default credential, or its only
one; `@name/model` picks one by name; several and no default is a 422 that is
not counted. The fake upstream records the key each call carried.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.proxy.conftest import Tenant, make_tenant
from tests.support.fake_upstream import FakeUpstream
from tests.support.live_server import LiveServer

MSG: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
FIRST_KEY = "sk-openai-test-0000"  # make_tenant's openai credential, named "openai"


@pytest.fixture
def tenant(live: LiveServer, upstream: FakeUpstream) -> Tenant:
    # a plan with room for five credentials: make_tenant's two and three more
    return make_tenant(live, upstream, monthly_requests=1000)


def client(t: Tenant) -> openai.OpenAI:
    return openai.OpenAI(api_key=t.key, base_url=f"{t.base}/v1", max_retries=0)


def add_openai(t: Tenant, upstream: FakeUpstream, name: str, key: str, **extra: Any) -> dict[str, Any]:
    body = {"vendor": "openai", "name": name, "api_key": key, "base_url": f"{upstream.url}/v1", **extra}
    with t.manage() as m:
        r = m.post("/providers", json=body)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def patch(t: Tenant, provider_id: str, body: dict[str, Any]) -> dict[str, Any]:
    with t.manage() as m:
        r = m.patch(f"/providers/{provider_id}", json=body)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def defaults(t: Tenant) -> dict[str, bool]:
    with t.manage() as m:
        listed = m.get("/providers").json()["data"]
    return {c["name"]: c["default"] for c in listed if c["vendor"] == "openai"}


def key_used(t: Tenant, upstream: FakeUpstream, model: str) -> str:
    """The upstream API key a chat call for `model` reached the fake upstream with."""
    before = len(upstream.requests)
    raw = client(t).chat.completions.with_raw_response.create(model=model, messages=MSG)
    assert raw.headers["x-modelux-provider-used"] == "openai"
    sent = [r for r in upstream.requests[before:] if r["path"] == "/v1/chat/completions"]
    assert len(sent) == 1
    return str(sent[0]["headers"]["authorization"]).removeprefix("Bearer ")


def used(t: Tenant) -> int:
    return int(t.billing()["meters"]["monthly_requests"]["used"])


def first_id(t: Tenant) -> str:
    with t.manage() as m:
        listed = m.get("/providers").json()["data"]
    return str(next(c["id"] for c in listed if c["name"] == "openai"))


def test_the_default_credential_serves_vendor_model_and_switching_it_switches(
    tenant: Tenant, upstream: FakeUpstream
) -> None:
    prod = add_openai(tenant, upstream, "openai-prod", "sk-prod-1111")
    # the vendor's first credential became its default; a second one does not take over
    assert prod["default"] is False
    assert defaults(tenant) == {"openai": True, "openai-prod": False}
    assert key_used(tenant, upstream, "openai/gpt-fake") == FIRST_KEY

    assert patch(tenant, prod["id"], {"default": True})["default"] is True
    assert defaults(tenant) == {"openai": False, "openai-prod": True}
    assert key_used(tenant, upstream, "openai/gpt-fake") == "sk-prod-1111"
    assert key_used(tenant, upstream, "gpt-fake") == "sk-prod-1111"  # a bare name too

    # `@name/model` picks by name whatever the default is
    assert key_used(tenant, upstream, "@openai/gpt-fake") == FIRST_KEY
    assert key_used(tenant, upstream, "@openai-prod/gpt-fake") == "sk-prod-1111"

    # created as the default: it takes over at once
    add_openai(tenant, upstream, "openai-new", "sk-new-2222", default=True)
    assert defaults(tenant) == {"openai": False, "openai-prod": False, "openai-new": True}
    assert key_used(tenant, upstream, "gpt-fake") == "sk-new-2222"
    assert used(tenant) == 6


def test_several_credentials_and_no_default_is_a_422_that_is_not_counted(
    tenant: Tenant, upstream: FakeUpstream
) -> None:
    add_openai(tenant, upstream, "openai-prod", "sk-prod-1111")
    patch(tenant, first_id(tenant), {"default": False})
    assert defaults(tenant) == {"openai": False, "openai-prod": False}
    c = client(tenant)
    for model in ("openai/gpt-fake", "gpt-fake"):
        with pytest.raises(openai.UnprocessableEntityError) as refused:
            c.chat.completions.create(model=model, messages=MSG)
        error = refused.value.body
        assert isinstance(error, dict)
        assert error["code"] == "ambiguous_provider_credential" and error["param"] == "model"
        assert "default" in error["message"] and "@credential-name/model" in error["message"]

    # two credentials of one name: the name picks none; an unknown name none either
    add_openai(tenant, upstream, "twin", "sk-twin-3333")
    add_openai(tenant, upstream, "twin", "sk-twin-4444")
    with pytest.raises(openai.UnprocessableEntityError) as twins:
        c.chat.completions.create(model="@twin/gpt-fake", messages=MSG)
    assert twins.value.code == "ambiguous_provider_credential"
    with pytest.raises(openai.UnprocessableEntityError) as unknown:
        c.chat.completions.create(model="@nobody/gpt-fake", messages=MSG)
    assert unknown.value.code == "no_provider_credential"
    assert used(tenant) == 0

    # a name still picks one; `@slug` without a slash is still a routing config
    assert key_used(tenant, upstream, "@openai-prod/gpt-fake") == "sk-prod-1111"
    with pytest.raises(openai.UnprocessableEntityError) as slug:
        c.chat.completions.create(model="@openai-prod", messages=MSG)
    assert slug.value.code == "routing_config_not_found"
    assert used(tenant) == 1


def test_deleting_credentials_leaves_the_choice_to_the_owner_until_one_remains(
    tenant: Tenant, upstream: FakeUpstream
) -> None:
    second = add_openai(tenant, upstream, "second", "sk-second-5555")
    third = add_openai(tenant, upstream, "third", "sk-third-6666")
    with tenant.manage() as m:
        deleted = m.delete(f"/providers/{first_id(tenant)}").json()["data"]
        assert deleted["deleted"] is True and deleted["default"] is False
        # the default is gone and two remain: the gateway does not pick one
        assert defaults(tenant) == {"second": False, "third": False}
        with pytest.raises(openai.UnprocessableEntityError) as refused:
            client(tenant).chat.completions.create(model="gpt-fake", messages=MSG)
        assert refused.value.code == "ambiguous_provider_credential"

        # one left: it is the default
        assert m.delete(f"/providers/{third['id']}").status_code == 200
        assert defaults(tenant) == {"second": True}
        assert key_used(tenant, upstream, "gpt-fake") == "sk-second-5555"

        assert m.delete(f"/providers/{second['id']}").status_code == 200
    with pytest.raises(openai.UnprocessableEntityError) as none:
        client(tenant).chat.completions.create(model="gpt-fake", messages=MSG)
    assert none.value.code == "no_provider_credential"
    assert used(tenant) == 1
