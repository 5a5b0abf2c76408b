"""The Responses, legacy completions and Anthropic Messages surfaces, through the official SDKs.

Every surface runs the chat pipeline (proxy/surfaces/pipeline.py), whose counting
and limits the chat tests prove on every database and counter backend; these
tests prove the translations, so they run on SQLite with the local counter only.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from modelux_server.config import Settings
from tests.conftest import Org
from tests.proxy.conftest import Tenant
from tests.proxy.test_budgets import add_budget
from tests.security.test_hostile_matrix import HOSTILE_VALUES, _encode
from tests.support import databases
from tests.support.fake_upstream import FakeUpstream
from tests.support.live_server import LiveServer


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> str:
    return databases.sqlite_copy(sqlite_template, tmp_path)


@pytest.fixture
def counter_backend() -> str:
    return "local"


@pytest.fixture
def proxy_settings(proxy_settings: Settings) -> Settings:
    # a price for the fake's model, so a spend budget can apply to it
    return proxy_settings.model_copy(
        update={"model_prices": '{"openai/echo": {"input_per_mtok": 1, "output_per_mtok": 2}}'}
    )


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # the fake upstream is on loopback, which the egress policy refuses by default; the
    # hostile-body matrix sends more than a minute's allowance with one key
    return settings.model_copy(update={"egress_allow": "127.0.0.0/8", "rate_limit_project_key_per_minute": 0})


def oai(t: Tenant) -> openai.OpenAI:
    return openai.OpenAI(api_key=t.key, base_url=f"{t.base}/v1", max_retries=0)


def claude(t: Tenant) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=t.key, base_url=t.base, max_retries=0)


def used(t: Tenant) -> int:
    count: int = t.billing()["meters"]["monthly_requests"]["used"]
    return count


def last_request(upstream: FakeUpstream, path: str) -> dict[str, Any]:
    found: dict[str, Any] = [r for r in upstream.requests if r["path"] == path][-1]
    return found


# -- /v1/responses --------------------------------------------------------------------


def test_responses_answer_a_string_input_with_instructions(tenant: Tenant, upstream: FakeUpstream) -> None:
    raw = oai(tenant).responses.with_raw_response.create(
        model="openai/echo", input="hello responses", instructions="be brief", max_output_tokens=50
    )
    response = raw.parse()
    assert response.output_text == "hello responses"
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed"
    assert response.usage is not None
    assert response.usage.output_tokens == 2
    assert response.usage.input_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + 2
    assert raw.headers["x-modelux-provider-used"] == "openai"
    sent = last_request(upstream, "/v1/chat/completions")["body"]
    assert sent["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello responses"},
    ]
    assert sent["max_tokens"] == 50
    # without a store, the next turn carries the conversation: the answer's own output items
    earlier: Any = [item.model_dump(exclude_none=True) for item in response.output]
    follow = oai(tenant).responses.create(
        model="openai/echo", input=[*earlier, {"role": "user", "content": "and again"}]
    )
    assert follow.output_text == "and again"
    assert last_request(upstream, "/v1/chat/completions")["body"]["messages"] == [
        {"role": "assistant", "content": "hello responses"},
        {"role": "user", "content": "and again"},
    ]
    assert used(tenant) == 2


def test_responses_stream_the_sdk_event_sequence(tenant: Tenant) -> None:
    conversation: Any = [
        {"role": "user", "content": [{"type": "input_text", "text": "first question"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "first answer"}]},
        {"type": "message", "role": "user", "content": "say this back"},
    ]
    events = list(oai(tenant).responses.create(model="openai/echo", input=conversation, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) == 3 and "".join(deltas) == "say this back"
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == "say this back"
    assert completed.response.usage is not None and completed.response.usage.output_tokens == 3
    assert used(tenant) == 1


def test_responses_stream_helper_and_a_claude_model(tenant: Tenant, upstream: FakeUpstream) -> None:
    with oai(tenant).responses.stream(model="anthropic/echo", input="through claude") as stream:
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(texts) == final.output_text == "through claude"
    assert final.usage is not None and final.usage.output_tokens == 2
    assert last_request(upstream, "/v1/messages")["body"]["stream"] is True
    assert used(tenant) == 1


def test_responses_cut_by_max_output_tokens_are_incomplete(tenant: Tenant) -> None:
    c = oai(tenant)
    plain = c.responses.create(model="openai/echo", input="one two three four", max_output_tokens=2)
    assert plain.status == "incomplete"
    assert plain.incomplete_details is not None and plain.incomplete_details.reason == "max_output_tokens"
    assert plain.output_text == "one two"
    events = list(
        c.responses.create(model="openai/echo", input="one two three four", max_output_tokens=2, stream=True)
    )
    assert events[-1].type == "response.incomplete"


def test_a_responses_stream_that_breaks_off_ends_failed(tenant: Tenant, upstream: FakeUpstream) -> None:
    upstream.configure("surfaces-cut", content="a b c d e f", cut_after=2)
    events = list(oai(tenant).responses.create(model="openai/surfaces-cut", input="x", stream=True))
    assert [e.type for e in events[-2:]] == ["error", "response.failed"]
    error = events[-2]
    assert error.type == "error" and error.code == "upstream_stream_interrupted"
    with (
        oai(tenant).responses.stream(model="openai/surfaces-cut", input="x") as stream,
        pytest.raises(RuntimeError, match="response.completed"),
    ):
        stream.get_final_response()


def test_responses_refuse_what_needs_a_store_or_is_not_text(tenant: Tenant) -> None:
    c = oai(tenant)
    with pytest.raises(openai.BadRequestError) as previous:
        c.responses.create(model="openai/echo", input="again", previous_response_id="resp_123")
    assert previous.value.code == "previous_response_not_available"
    assert previous.value.param == "previous_response_id"
    assert "input" in previous.value.message
    image: Any = [
        {"role": "user", "content": [{"type": "input_image", "image_url": "https://example.test/a.png"}]}
    ]
    with pytest.raises(openai.UnprocessableEntityError) as not_text:
        c.responses.create(model="openai/echo", input=image)
    assert not_text.value.code == "unsupported_parameter" and not_text.value.param == "input[0].content[0]"
    call: Any = [{"type": "function_call_output", "call_id": "c1", "output": "42"}]
    with pytest.raises(openai.UnprocessableEntityError) as not_message:
        c.responses.create(model="openai/echo", input=call)
    assert not_message.value.param == "input[0]"
    tool: Any = [{"type": "function", "name": "f", "parameters": {}}]
    with pytest.raises(openai.UnprocessableEntityError):
        c.responses.create(model="openai/echo", input="x", tools=tool)
    nothing: Any = None
    with pytest.raises(openai.UnprocessableEntityError) as no_input:
        c.responses.create(model="openai/echo", input=nothing)
    assert no_input.value.code == "missing_field"
    assert used(tenant) == 0


# -- /v1/completions ------------------------------------------------------------------


def test_legacy_completions_plain_and_streaming(tenant: Tenant, upstream: FakeUpstream) -> None:
    c = oai(tenant)
    done = c.completions.create(model="openai/echo", prompt="complete this please", max_tokens=10)
    assert done.object == "text_completion"
    assert done.choices[0].text == "complete this please"
    assert done.choices[0].finish_reason == "stop" and done.choices[0].logprobs is None
    assert done.usage is not None and done.usage.completion_tokens == 3
    sent = last_request(upstream, "/v1/chat/completions")["body"]
    assert sent["messages"] == [{"role": "user", "content": "complete this please"}]
    chunks = list(
        c.completions.create(
            model="openai/echo",
            prompt=["streamed prompt"],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(ch.choices[0].text for ch in chunks if ch.choices) == "streamed prompt"
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 2
    assert all(ch.object == "text_completion" for ch in chunks)
    with pytest.raises(openai.UnprocessableEntityError) as several:
        c.completions.create(model="openai/echo", prompt=["a", "b"])
    assert several.value.param == "prompt"
    assert used(tenant) == 2


# -- /v1/messages ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "path"), [("openai/echo", "/v1/chat/completions"), ("anthropic/echo", "/v1/messages")]
)
def test_the_anthropic_sdk_works_against_any_vendor(
    tenant: Tenant, upstream: FakeUpstream, model: str, path: str
) -> None:
    a = claude(tenant)
    message = a.messages.create(
        model=model,
        max_tokens=100,
        system="be brief",
        messages=[{"role": "user", "content": [{"type": "text", "text": "hello from anthropic"}]}],
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.content[0].type == "text" and message.content[0].text == "hello from anthropic"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3 and message.usage.input_tokens > 0
    assert message._request_id is not None and message._request_id.startswith("req_")
    sent = last_request(upstream, path)["body"]
    system = sent["system"] if path == "/v1/messages" else sent["messages"][0]["content"]
    assert system == "be brief"
    cut = a.messages.create(model=model, max_tokens=1, messages=[{"role": "user", "content": "one two"}])
    assert cut.stop_reason == "max_tokens" and cut.content[0].type == "text"
    assert cut.content[0].text == "one"
    assert used(tenant) == 2


@pytest.mark.parametrize("model", ["openai/echo", "anthropic/echo"])
def test_anthropic_streams_from_any_vendor(tenant: Tenant, model: str) -> None:
    with claude(tenant).messages.stream(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "stream me back"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "stream me back"
    assert final.content[0].type == "text" and final.content[0].text == "stream me back"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 3 and final.usage.input_tokens > 0
    assert used(tenant) == 1


def test_anthropic_errors_are_the_sdk_exceptions(tenant: Tenant, upstream: FakeUpstream) -> None:
    a = claude(tenant)
    hello: Any = [{"role": "user", "content": "hi"}]
    with pytest.raises(anthropic.UnprocessableEntityError) as unknown:
        a.messages.create(model="mystery-model", max_tokens=10, messages=hello)
    assert unknown.value.type == "invalid_request_error"
    assert unknown.value.error_code == "model_not_found"
    assert isinstance(unknown.value.body, dict)
    assert unknown.value.body["error"]["code"] == "model_not_found"
    assert unknown.value.request_id is not None and unknown.value.request_id.startswith("req_")
    with pytest.raises(anthropic.AuthenticationError) as bad_key:
        anthropic.Anthropic(api_key="mlx_sk_nope", base_url=tenant.base, max_retries=0).messages.create(
            model="openai/echo", max_tokens=10, messages=hello
        )
    assert bad_key.value.type == "authentication_error"
    tool: Any = [{"name": "f", "input_schema": {"type": "object"}}]
    with pytest.raises(anthropic.UnprocessableEntityError) as tools:
        a.messages.create(model="openai/echo", max_tokens=10, messages=hello, tools=tool)
    assert tools.value.error_code == "unsupported_parameter"
    upstream.configure("surfaces-cut-claude", content="a b c d e f", cut_after=2)
    with (
        pytest.raises(anthropic.APIStatusError) as broken,
        a.messages.stream(model="openai/surfaces-cut-claude", max_tokens=10, messages=hello) as stream,
    ):
        for _ in stream.text_stream:  # the error arrives mid-stream
            pass
    assert broken.value.type == "api_error"
    assert broken.value.error_code == "upstream_stream_interrupted"
    assert used(tenant) == 1  # only the stream reached the upstream


def test_messages_accept_a_bearer_key_and_refuse_a_missing_one(tenant: Tenant) -> None:
    body = {"model": "openai/echo", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    bearer = httpx.post(
        f"{tenant.base}/v1/messages", json=body, headers={"Authorization": f"Bearer {tenant.key}"}
    )
    assert bearer.status_code == 200 and bearer.json()["content"][0]["text"] == "hi"
    anonymous = httpx.post(
        f"{tenant.base}/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}
    )
    assert anonymous.status_code == 401
    error = anonymous.json()
    assert error["type"] == "error" and error["error"]["type"] == "authentication_error"
    assert error["error"]["code"] == "missing_api_key"
    assert anonymous.headers["request-id"] == anonymous.headers["x-modelux-request-id"]


def test_a_spend_budget_blocks_every_surface_in_its_own_shape(live: LiveServer, tenant: Tenant) -> None:
    add_budget(live, tenant, cap_micros=1, name="tiny")
    hello: Any = [{"role": "user", "content": "hi"}]
    with pytest.raises(anthropic.PaymentRequiredError) as blocked:
        claude(tenant).messages.create(model="openai/echo", max_tokens=10, messages=hello)
    body = blocked.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert blocked.value.type == "billing_error" and blocked.value.error_code == "budget_exceeded"
    assert body["budget"]["name"] == "tiny"  # the contract's top-level `budget` object, kept
    with pytest.raises(openai.APIStatusError) as refused:
        oai(tenant).responses.create(model="openai/echo", input="hi")
    assert refused.value.status_code == 402 and refused.value.code == "budget_exceeded"
    with pytest.raises(openai.APIStatusError) as legacy:
        oai(tenant).completions.create(model="openai/echo", prompt="hi")
    assert legacy.value.status_code == 402
    assert used(tenant) == 0


# -- /v1/models -----------------------------------------------------------------------


def test_models_lists_configs_then_the_models_of_each_credentialed_vendor(tenant: Tenant) -> None:
    with tenant.manage() as m:
        made = m.post(
            "/routing-configs",
            json={
                "project_id": tenant.project_id,
                "slug": "cheap",
                "strategy": "single",
                "model": "openai/echo",
            },
        )
        assert made.status_code == 201, made.text
    listed = list(oai(tenant).models.list())
    ids = [model.id for model in listed]
    assert ids[0] == "@cheap"
    assert "openai/gpt-4o" in ids and "anthropic/claude-3-5-haiku-latest" in ids
    owners = {model.id.split("/", 1)[0]: model.owned_by for model in listed[1:]}
    assert owners == {"openai": "openai", "anthropic": "anthropic"}
    with tenant.manage() as m:
        providers = m.get("/providers").json()["data"]
        gone = next(p for p in providers if p["vendor"] == "anthropic")
        assert m.delete(f"/providers/{gone['id']}").status_code == 200
    after = [model.id for model in oai(tenant).models.list()]
    assert "openai/gpt-4o" in after and not any(i.startswith("anthropic/") for i in after)
    assert used(tenant) == 0


# -- hostile bodies -------------------------------------------------------------------

HELLO = [{"role": "user", "content": "hi"}]
SURFACES: dict[str, tuple[dict[str, Any], list[str], list[dict[str, Any]]]] = {
    # path: (a valid body, its top-level fields to spoil, bodies with a nested spoiled value)
    "/v1/responses": (
        {"model": "openai/echo", "input": "hi"},
        [
            *("model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "text"),
            *("reasoning", "metadata", "stream", "user", "tools", "store", "previous_response_id"),
            *("conversation", "prompt", "background"),
        ],
        [
            {"input": [{"role": "user", "content": "{v}"}]},
            {"input": [{"role": "user", "content": ["{v}"]}]},
            {"input": [{"role": "user", "content": [{"type": "input_text", "text": "{v}"}]}]},
            {"input": [{"type": "{v}", "role": "user", "content": "hi"}]},
            {"input": [{"role": "{v}", "content": "hi"}]},
            {"text": {"format": "{v}"}},
            {"text": {"format": {"type": "{v}"}}},
            {"reasoning": {"effort": "{v}"}},
        ],
    ),
    "/v1/completions": (
        {"model": "openai/echo", "prompt": "hi"},
        [
            *("model", "prompt", "max_tokens", "temperature", "top_p", "n", "stop", "stream"),
            *("stream_options", "suffix", "echo", "logprobs", "best_of", "user", "seed"),
        ],
        [{"prompt": ["{v}"]}, {"stream": True, "stream_options": {"include_usage": "{v}"}}],
    ),
    "/v1/messages": (
        {"model": "openai/echo", "max_tokens": 5, "messages": HELLO},
        [
            *("model", "messages", "system", "max_tokens", "stop_sequences", "temperature", "top_p"),
            *("metadata", "stream", "tools"),
        ],
        [
            {"messages": [{"role": "user", "content": "{v}"}]},
            {"messages": [{"role": "user", "content": ["{v}"]}]},
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "{v}"}]}]},
            {"messages": [{"role": "user", "content": [{"type": "image", "source": "{v}"}]}]},
            {"messages": [{"role": "{v}", "content": "hi"}]},
            {"system": ["{v}"]},
            {"system": [{"type": "text", "text": "{v}"}]},
            {"metadata": {"user_id": "{v}"}},
        ],
    ),
}


def _spoiled(template: Any, value: Any) -> Any:
    if template == "{v}":
        return value
    if isinstance(template, dict):
        return {k: _spoiled(v, value) for k, v in template.items()}
    if isinstance(template, list):
        return [_spoiled(v, value) for v in template]
    return template


def _refusal_in_shape(r: httpx.Response, path: str, what: str) -> None:
    assert r.status_code < 500, f"{what}: {r.status_code} {r.text[:300]}"
    assert "x-injected" not in r.headers, what
    if r.status_code < 400:
        return
    body = r.json()
    error = body.get("error")
    assert isinstance(error, dict), f"{what}: {body}"
    assert all(isinstance(error.get(k), str) and error[k] for k in ("type", "code", "message")), what
    if path == "/v1/messages":
        assert body["type"] == "error", what


async def _key_with_credentials(client: httpx.AsyncClient, org: Org, upstream: FakeUpstream) -> str:
    h = org.headers
    project = (await client.post("/manage/v1/projects", json={"name": "app"}, headers=h)).json()["data"]["id"]
    made = await client.post("/manage/v1/api-keys", json={"project_id": project, "name": "k"}, headers=h)
    for vendor, base in (("openai", f"{upstream.url}/v1"), ("anthropic", upstream.url)):
        body = {"vendor": vendor, "name": vendor, "api_key": f"sk-{vendor}-test-0000", "base_url": base}
        r = await client.post("/manage/v1/providers", json=body, headers=h)
        assert r.status_code == 201, r.text
    key: str = made.json()["data"]["key"]
    return key


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
async def test_hostile_bodies_never_answer_5xx_and_refusals_are_not_counted(
    client: httpx.AsyncClient, org: Org, upstream: FakeUpstream, vendor: str, caplog: pytest.LogCaptureFixture
) -> None:
    """In process (no sockets) and with no per-minute limit: a thousand bodies per vendor."""
    caplog.set_level(logging.ERROR)
    key = await _key_with_credentials(client, org, upstream)
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
    answered = 0
    upstream_refused: list[str] = []
    for path, (valid, fields, nested) in SURFACES.items():
        base = {**valid, "model": f"{vendor}/echo"}
        bodies = [
            (f"{name}={label}", _encode({**base, name: value}))
            for name in fields
            for label, value in HOSTILE_VALUES.items()
        ]
        bodies += [
            (
                f"{json.dumps(template)[:60]} {label}",
                json.dumps({**base, **_spoiled(template, value)}).encode(),
            )
            for template in nested
            for label, value in HOSTILE_VALUES.items()
            if label != "deep"  # spliced in as text at the top level only
        ]
        for what, content in bodies:
            r = await client.post(path, content=content, headers=headers)
            _refusal_in_shape(r, path, f"POST {path} {what}")
            assert r.status_code != 429, what
            answered += r.status_code == 200
            if r.headers.get("x-modelux-error-source") == "upstream":
                upstream_refused.append(f"{path} {what}: {r.text[:200]}")
    billing = (await client.get("/manage/v1/billing", headers=org.headers)).json()["data"]
    assert answered > 100
    # a request the gateway refuses is never counted; one the upstream refused was sent
    assert billing["meters"]["monthly_requests"]["used"] == answered + len(upstream_refused), upstream_refused
    errors = [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert not errors, errors[:5]
