"""Upstream refusals reach the caller as the upstream meant them, through the official SDK.

A 4xx keeps its status, code and message (the SDK raises the matching class and does
not retry it); a 429 stays 429 with the upstream's Retry-After; 5xx and timeouts are
502 and 504; which failures a fallback config moves on from is its `retry_on`.
"""

from __future__ import annotations

import itertools

import httpx
import openai
import pytest

from tests.proxy.conftest import Tenant
from tests.support.fake_upstream import FakeUpstream

MSG = [{"role": "user", "content": "hi"}]
_names = itertools.count()


def client(t: Tenant, **kw: object) -> openai.OpenAI:
    return openai.OpenAI(api_key=t.key, base_url=f"{t.base}/v1", **kw)  # type: ignore[arg-type]


def model(upstream: FakeUpstream, **behaviour: object) -> str:
    """A model name of its own, so a session-wide fake's settings never leak between tests."""
    name = f"errors-{next(_names)}"
    upstream.configure(name, **behaviour)
    return name


def calls(upstream: FakeUpstream, name: str) -> int:
    return sum(1 for r in upstream.requests if r["body"].get("model") == name)


def used(t: Tenant) -> int:
    return int(t.billing()["meters"]["monthly_requests"]["used"])


def fallback(t: Tenant, slug: str, targets: list[str], **fields: object) -> None:
    with t.manage() as m:
        r = m.post(
            "/routing-configs",
            json={
                "project_id": t.project_id,
                "slug": slug,
                "strategy": "fallback",
                "targets": [{"model": target} for target in targets],
                **fields,
            },
        )
        assert r.status_code == 201, r.text


def test_an_upstream_400_is_a_bad_request_error_with_one_call_and_one_count(
    tenant: Tenant, upstream: FakeUpstream
) -> None:
    name = model(
        upstream,
        status=400,
        error_message="This model's maximum context length is 8192 tokens.",
        error_code="context_length_exceeded",
        error_param="messages",
    )
    # the SDK's default retries stay on: a 400 must not be retried
    with pytest.raises(openai.BadRequestError) as raised:
        client(tenant).chat.completions.create(model=f"openai/{name}", messages=MSG)
    error = raised.value
    assert error.status_code == 400
    assert error.code == "context_length_exceeded" and error.param == "messages"
    assert "maximum context length is 8192 tokens" in error.message
    body = error.body
    assert isinstance(body, dict)
    assert body["type"] == "invalid_request_error" and body["source"] == "upstream"
    assert body["provider"] == "openai" and body["upstream_status"] == 400
    headers = error.response.headers
    assert headers["x-modelux-request-id"].startswith("req_")
    assert headers["x-modelux-provider-used"] == "openai" and headers["x-modelux-model-used"] == name
    assert headers["x-modelux-error-source"] == "upstream"
    assert calls(upstream, name) == 1
    assert used(tenant) == 1


def test_an_upstream_429_stays_429_with_its_retry_after(tenant: Tenant, upstream: FakeUpstream) -> None:
    name = model(
        upstream,
        status=429,
        error_message="Rate limit reached for requests",
        error_code="rate_limit_exceeded",
        retry_after="7",
    )
    with pytest.raises(openai.RateLimitError) as raised:
        client(tenant, max_retries=0).chat.completions.create(model=f"openai/{name}", messages=MSG)
    error = raised.value
    assert error.status_code == 429 and error.code == "rate_limit_exceeded"
    assert error.response.headers["retry-after"] == "7"
    body = error.body
    # the upstream's own type is relayed; `source` (and the header) say whose limit it is,
    # where the key's own per-minute 429 says `rate_limited` and names no provider
    assert isinstance(body, dict) and body["type"] == "rate_limit_exceeded" and body["source"] == "upstream"
    assert body["provider"] == "openai"
    assert error.response.headers["x-modelux-error-source"] == "upstream"
    assert calls(upstream, name) == 1 and used(tenant) == 1


def test_an_anthropic_400_keeps_its_status_and_type(tenant: Tenant, upstream: FakeUpstream) -> None:
    name = model(upstream, status=400, error_message="prompt is too long: 210000 tokens > 200000 maximum")
    with pytest.raises(openai.BadRequestError) as raised:
        client(tenant).chat.completions.create(model=f"anthropic/{name}", messages=MSG, max_tokens=10)
    assert "prompt is too long" in raised.value.message
    body = raised.value.body
    assert (
        isinstance(body, dict) and body["type"] == "invalid_request_error" and body["provider"] == "anthropic"
    )
    assert calls(upstream, name) == 1


def test_5xx_after_fallback_is_502_and_a_timeout_504(tenant: Tenant, upstream: FakeUpstream) -> None:
    first, second = model(upstream, status=503), model(upstream, status=500)
    fallback(tenant, "both-down", [f"openai/{first}", f"openai/{second}"])
    with pytest.raises(openai.InternalServerError) as raised:
        client(tenant, max_retries=0).chat.completions.create(model="@both-down", messages=MSG)
    assert raised.value.status_code == 502
    assert raised.value.response.headers["x-modelux-model-used"] == second
    assert calls(upstream, first) == 1 and calls(upstream, second) == 1
    slow = model(upstream, delay=3.0)
    with tenant.manage() as m:
        r = m.post(
            "/routing-configs",
            json={
                "project_id": tenant.project_id,
                "slug": "too-slow",
                "strategy": "single",
                "model": f"openai/{slow}",
                "timeout_ms": 200,
            },
        )
        assert r.status_code == 201, r.text
    with pytest.raises(openai.APIStatusError) as timed_out:
        client(tenant, max_retries=0).chat.completions.create(model="@too-slow", messages=MSG)
    assert timed_out.value.status_code == 504
    assert used(tenant) == 2


def test_fallback_moves_on_from_429_and_5xx_but_not_from_a_4xx_by_default(
    tenant: Tenant, upstream: FakeUpstream
) -> None:
    limited, good = model(upstream, status=429), model(upstream, content="from the second target")
    fallback(tenant, "limited", [f"openai/{limited}", f"openai/{good}"])
    done = client(tenant, max_retries=0).chat.completions.create(model="@limited", messages=MSG)
    assert done.choices[0].message.content == "from the second target"

    refused = model(upstream, status=400, error_code="invalid_value")
    fallback(tenant, "refused", [f"openai/{refused}", f"openai/{good}"])
    with pytest.raises(openai.BadRequestError):
        client(tenant, max_retries=0).chat.completions.create(model="@refused", messages=MSG)
    assert calls(upstream, good) == 1  # only the 429 config reached the second target


def test_retry_on_is_configurable_per_routing_config(tenant: Tenant, upstream: FakeUpstream) -> None:
    missing, good = model(upstream, status=404), model(upstream, content="second")
    fallback(tenant, "on-404", [f"openai/{missing}", f"openai/{good}"], retry_on=["404"])
    done = client(tenant, max_retries=0).chat.completions.create(model="@on-404", messages=MSG)
    assert done.choices[0].message.content == "second"

    down = model(upstream, status=503)
    fallback(tenant, "no-5xx", [f"openai/{down}", f"openai/{good}"], retry_on=["timeout"])
    with pytest.raises(openai.InternalServerError):
        client(tenant, max_retries=0).chat.completions.create(model="@no-5xx", messages=MSG)
    assert calls(upstream, good) == 1

    with tenant.manage() as m:
        r = m.post(
            "/routing-configs",
            json={
                "project_id": tenant.project_id,
                "slug": "bad-retry",
                "strategy": "fallback",
                "targets": [{"model": f"openai/{good}"}],
                "retry_on": ["sometimes"],
            },
        )
    assert r.status_code == 422 and "retry_on" in r.text


def test_an_upstream_error_body_that_is_not_json_is_summarised(
    tenant: Tenant, upstream: FakeUpstream
) -> None:
    name = model(upstream, status=400, error_message="x" * 5000, error_code="<script>alert(1)</script>")
    r = httpx.post(
        f"{tenant.base}/v1/chat/completions",
        json={"model": f"openai/{name}", "messages": MSG},
        headers={"Authorization": f"Bearer {tenant.key}"},
    )
    assert r.status_code == 400
    error = r.json()["error"]
    # a code that is not a plain identifier is not relayed; the message is one bounded line
    assert error["code"] == "upstream_400" and "<script>" not in r.text
    assert len(error["message"]) < 300


def test_an_upstream_401_says_whose_credential_without_quoting_it(
    tenant: Tenant, upstream: FakeUpstream
) -> None:
    name = model(
        upstream,
        status=401,
        error_message="Incorrect API key provided: sk-proj-****wxyz.",
        error_code="invalid_api_key",
    )
    with pytest.raises(openai.AuthenticationError) as raised:
        client(tenant, max_retries=0).chat.completions.create(model=f"openai/{name}", messages=MSG)
    body = raised.value.body
    assert isinstance(body, dict) and body["source"] == "upstream" and body["code"] == "invalid_api_key"
    assert "wxyz" not in raised.value.response.text and "credential" in raised.value.message
