"""Provider adapters against the fake upstream over real HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from modelux_server.kit.egress import EgressPolicy
from modelux_server.proxy.providers import (
    AnthropicProvider,
    ChatStream,
    GeminiProvider,
    OpenAICompatibleProvider,
    Provider,
    ProviderRegistry,
    UpstreamCredential,
    UpstreamError,
    UpstreamTimeout,
    Usage,
)
from tests.support.fake_upstream import FakeUpstream

MESSAGES = [
    {"role": "system", "content": "Be terse."},
    {"role": "user", "content": "Say hello"},
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(fake: FakeUpstream) -> None:
    fake.reset()


@pytest.fixture
async def registry() -> AsyncIterator[ProviderRegistry]:
    # the fake upstream listens on loopback, which the default egress policy refuses
    async with ProviderRegistry(egress=EgressPolicy.parse("127.0.0.0/8")) as reg:
        yield reg


@pytest.fixture
def openai_cred(fake: FakeUpstream) -> UpstreamCredential:
    return UpstreamCredential("openai", "sk-test-openai", fake.url + "/v1")


@pytest.fixture
def anthropic_cred(fake: FakeUpstream) -> UpstreamCredential:
    return UpstreamCredential("anthropic", "sk-ant-test", fake.url)


def in_flight(registry: ProviderRegistry) -> int:
    return registry.client.in_flight


def sse_payloads(raw: bytes) -> list[str]:
    return [e.removeprefix("data: ") for e in raw.decode().split("\n\n") if e.startswith("data: ")]


async def collect(stream: ChatStream) -> list[bytes]:
    async with stream:
        return [chunk async for chunk in stream]


def content_of(chunks: list[bytes]) -> str:
    payloads = [json.loads(p) for p in sse_payloads(b"".join(chunks)) if p != "[DONE]"]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in payloads if c["choices"])


# -- registry ------------------------------------------------------------------------


async def test_registry_maps_vendors(registry: ProviderRegistry) -> None:
    assert isinstance(registry.get("anthropic"), AnthropicProvider)
    assert isinstance(registry.get("google"), GeminiProvider)  # the native API (docs/providers.md)
    for vendor in ("openai", "groq", "together", "deepseek", "my-vllm"):
        assert isinstance(registry.get(vendor), OpenAICompatibleProvider)
    assert isinstance(registry.get("openai"), Provider)
    assert "sk-secret" not in repr(UpstreamCredential("openai", "sk-secret", None))


# -- OpenAI-compatible ---------------------------------------------------------------


async def test_openai_chat(fake, registry, openai_cred) -> None:
    fake.configure("gpt-up", content="Hi there friend")
    provider = registry.for_credential(openai_cred)
    body = {"model": "alias", "messages": MESSAGES, "temperature": 0.2}
    resp = await provider.chat(body, model="gpt-up", credential=openai_cred, timeout=5)

    assert resp.status == 200
    assert resp.body["choices"][0]["message"]["content"] == "Hi there friend"
    assert resp.usage == Usage(4, 3, 7)
    sent = fake.requests[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == "Bearer sk-test-openai"
    assert sent["body"]["model"] == "gpt-up" and sent["body"]["temperature"] == 0.2
    assert body["model"] == "alias"  # caller's body untouched


async def test_openai_stream_is_incremental(fake, registry, openai_cred) -> None:
    fake.configure("gpt-up", content="one two three four", chunk_delay=0.01)
    provider = registry.get("openai")
    body = {"model": "x", "messages": MESSAGES, "stream": True}
    stream = await provider.chat_stream(body, model="gpt-up", credential=openai_cred, timeout=5)
    chunks = await collect(stream)

    assert len(chunks) > 1
    assert chunks[-1].endswith(b"data: [DONE]\n\n")
    assert content_of(chunks) == "one two three four"
    assert stream.usage == Usage(4, 4, 8)
    # Usage was requested upstream for the log, but the client did not ask for it.
    assert fake.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    assert all('"choices":[]' not in p for p in sse_payloads(b"".join(chunks)))


async def test_openai_stream_keeps_usage_chunk_when_asked(fake, registry, openai_cred) -> None:
    body = {"messages": MESSAGES, "stream_options": {"include_usage": True}}
    stream = await registry.get("groq").chat_stream(body, model="gpt-up", credential=openai_cred, timeout=5)
    payloads = sse_payloads(b"".join(await collect(stream)))
    assert json.loads(payloads[-2])["usage"]["total_tokens"] == stream.usage.total_tokens
    assert payloads[-1] == "[DONE]"


@pytest.mark.parametrize(
    ("model", "status", "retryable"),
    [("fail-429", 429, True), ("fail-500", 500, True), ("fail-503", 503, True)],
)
async def test_openai_retryable_errors(registry, openai_cred, model, status, retryable) -> None:
    provider = registry.get("openai")
    with pytest.raises(UpstreamError) as err:
        await provider.chat({"messages": MESSAGES}, model=model, credential=openai_cred, timeout=5)
    assert (err.value.status, err.value.retryable) == (status, retryable)
    with pytest.raises(UpstreamError) as err:
        await provider.chat_stream({"messages": MESSAGES}, model=model, credential=openai_cred, timeout=5)
    assert err.value.status == status


async def test_openai_client_error_keeps_message(fake, registry, openai_cred) -> None:
    fake.configure("bad", status=400, error_message="'messages' is too long")
    with pytest.raises(UpstreamError) as err:
        await registry.get("openai").chat(
            {"messages": MESSAGES}, model="bad", credential=openai_cred, timeout=5
        )
    assert err.value.status == 400
    assert not err.value.retryable
    assert err.value.message == "'messages' is too long"


async def test_timeouts(registry, openai_cred, anthropic_cred) -> None:
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout) as err:
        await registry.get("openai").chat(
            {"messages": MESSAGES}, model="slow-2.0", credential=openai_cred, timeout=0.2
        )
    assert err.value.retryable and err.value.status is None
    with pytest.raises(UpstreamTimeout):
        await registry.get("openai").chat_stream(
            {"messages": MESSAGES}, model="slow-2.0", credential=openai_cred, timeout=0.2
        )
    with pytest.raises(UpstreamTimeout):
        await registry.get("anthropic").chat_stream(
            {"messages": MESSAGES}, model="slow-2.0", credential=anthropic_cred, timeout=0.2
        )
    assert time.monotonic() - started < 1.5
    assert in_flight(registry) == 0  # cancelled requests gave their pool slot back


async def test_connection_refused(registry) -> None:
    with socket.socket() as sock:  # grab a free port, then leave it closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cred = UpstreamCredential("openai", "sk", f"http://127.0.0.1:{port}/v1")
    for call in (registry.get("openai").chat, registry.get("openai").chat_stream):
        with pytest.raises(UpstreamError) as err:
            await call({"messages": MESSAGES}, model="m", credential=cred, timeout=2)
        assert err.value.status is None and err.value.retryable
        assert not isinstance(err.value, UpstreamTimeout)


async def test_stream_cut_midway_raises_during_iteration(fake, registry, openai_cred) -> None:
    fake.configure("cut", cut_after=2, chunk_delay=0.01)
    stream = await registry.get("openai").chat_stream(
        {"messages": MESSAGES}, model="cut", credential=openai_cred, timeout=5
    )
    with pytest.raises(UpstreamError) as err:
        await collect(stream)
    assert err.value.retryable and err.value.status is None


async def test_embeddings(fake, registry, openai_cred) -> None:
    body = {"model": "alias", "input": ["alpha", "beta"], "dimensions": 4}
    resp = await registry.get("openai").embeddings(
        body, model="text-embedding-fake", credential=openai_cred, timeout=5
    )
    assert [d["index"] for d in resp.body["data"]] == [0, 1]
    assert len(resp.body["data"][0]["embedding"]) == 4
    assert resp.usage == Usage(2, 0, 2)
    assert fake.requests[-1]["body"]["model"] == "text-embedding-fake"


def test_default_base_urls() -> None:
    from modelux_server.proxy.providers.openai_compatible import base_url_for

    assert base_url_for(UpstreamCredential("groq", "k", None)) == "https://api.groq.com/openai/v1"
    assert base_url_for(UpstreamCredential("x", "k", "http://h:1/v1/")) == "http://h:1/v1"
    with pytest.raises(UpstreamError) as err:
        base_url_for(UpstreamCredential("unknown", "k", None))
    assert not err.value.retryable


# -- Anthropic -----------------------------------------------------------------------


async def test_anthropic_chat_translation(fake, registry, anthropic_cred) -> None:
    fake.configure("claude-up", content="Hello human")
    body = {"model": "alias", "messages": MESSAGES, "temperature": 0.5, "stop": "END"}
    resp = await registry.for_credential(anthropic_cred).chat(
        body, model="claude-up", credential=anthropic_cred, timeout=5
    )

    sent = fake.requests[-1]
    assert sent["path"] == "/v1/messages"
    assert sent["headers"]["x-api-key"] == "sk-ant-test"
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent["headers"]
    assert sent["body"]["system"] == "Be terse."
    assert sent["body"]["max_tokens"] == 1024
    assert sent["body"]["stop_sequences"] == ["END"]
    assert sent["body"]["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]}]
    assert resp.body["object"] == "chat.completion"
    choice = resp.body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hello human"}
    assert choice["finish_reason"] == "stop"
    assert resp.usage == Usage(4, 2, 6)
    assert resp.body["usage"]["total_tokens"] == 6


async def test_anthropic_max_tokens_maps_to_length(registry, anthropic_cred) -> None:
    body = {"messages": MESSAGES, "max_tokens": 2}
    resp = await registry.get("anthropic").chat(body, model="claude-up", credential=anthropic_cred, timeout=5)
    assert resp.body["choices"][0]["finish_reason"] == "length"
    assert resp.usage is not None and resp.usage.completion_tokens == 2


async def test_anthropic_stream_translation(fake, registry, anthropic_cred) -> None:
    fake.configure("claude-up", content="streamed words here", chunk_delay=0.01)
    body = {"messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    stream = await registry.get("anthropic").chat_stream(
        body, model="claude-up", credential=anthropic_cred, timeout=5
    )
    chunks = await collect(stream)

    assert fake.requests[-1]["body"]["stream"] is True
    assert fake.requests[-1]["body"]["system"] == "Be terse."
    assert len(chunks) > 1
    assert chunks[-1].endswith(b"data: [DONE]\n\n")
    payloads = [json.loads(p) for p in sse_payloads(b"".join(chunks))[:-1]]
    assert all(p["object"] == "chat.completion.chunk" for p in payloads)
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert content_of(chunks) == "streamed words here"
    assert payloads[-2]["choices"][0]["finish_reason"] == "stop"
    assert payloads[-1]["choices"] == [] and payloads[-1]["usage"]["total_tokens"] == 7
    assert stream.usage == Usage(4, 3, 7)


@pytest.mark.parametrize(("model", "retryable"), [("fail-529", True), ("fail-429", True)])
async def test_anthropic_retryable_errors(registry, anthropic_cred, model, retryable) -> None:
    with pytest.raises(UpstreamError) as err:
        await registry.get("anthropic").chat_stream(
            {"messages": MESSAGES}, model=model, credential=anthropic_cred, timeout=5
        )
    assert err.value.retryable is retryable


async def test_anthropic_client_error_message(fake, registry, anthropic_cred) -> None:
    fake.configure("claude-bad", status=400, error_message="max_tokens: too large")
    with pytest.raises(UpstreamError) as err:
        await registry.get("anthropic").chat(
            {"messages": MESSAGES}, model="claude-bad", credential=anthropic_cred, timeout=5
        )
    assert (err.value.status, err.value.retryable) == (400, False)
    assert err.value.message == "max_tokens: too large"


async def test_anthropic_refuses_unsupported(fake, registry, anthropic_cred) -> None:
    provider = registry.get("anthropic")
    with pytest.raises(UpstreamError) as err:
        await provider.embeddings({"input": "x"}, model="c", credential=anthropic_cred, timeout=5)
    assert (err.value.status, err.value.retryable) == (400, False)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    with pytest.raises(UpstreamError) as err:
        await provider.chat(
            {"messages": MESSAGES, "tools": tools}, model="c", credential=anthropic_cred, timeout=5
        )
    assert not err.value.retryable
    assert fake.requests == []  # refused locally, nothing sent upstream


async def test_early_close_releases_stream_quickly(registry, openai_cred) -> None:
    stream = await registry.get("openai").chat_stream(
        {"messages": MESSAGES}, model="drip-0.2", credential=openai_cred, timeout=5
    )
    started = time.monotonic()
    async with stream:
        assert (await anext(stream)).startswith(b"data: ")
    assert time.monotonic() - started < 0.5  # did not wait for the remaining chunks
    assert in_flight(registry) == 0
    # The pool stays usable after a connection was dropped mid-stream.
    resp = await registry.get("openai").chat(
        {"messages": MESSAGES}, model="gpt-up", credential=openai_cred, timeout=5
    )
    assert resp.status == 200


def test_anthropic_error_event_is_mapped() -> None:
    from modelux_server.proxy.providers.anthropic import _StreamState

    event = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    with pytest.raises(UpstreamError) as err:
        _StreamState(include_usage=False).translate("error", event)
    assert (err.value.status, err.value.retryable, err.value.message) == (529, True, "Overloaded")


async def test_many_concurrent_requests_release_their_pool_slots(fake, registry, openai_cred) -> None:
    provider = registry.get("openai")

    async def one(i: int) -> None:
        if i % 2:
            await provider.chat({"messages": MESSAGES}, model="m", credential=openai_cred, timeout=5)
        else:
            stream = await provider.chat_stream(
                {"messages": MESSAGES}, model="m", credential=openai_cred, timeout=5
            )
            await collect(stream)

    await asyncio.gather(*(one(i) for i in range(200)))
    with pytest.raises(UpstreamError):
        await provider.chat({"messages": MESSAGES}, model="fail-500", credential=openai_cred, timeout=5)
    assert in_flight(registry) == 0


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
async def test_finished_streams_reuse_the_connection(
    fake, registry, openai_cred, anthropic_cred, vendor
) -> None:
    cred = openai_cred if vendor == "openai" else anthropic_cred
    for _ in range(3):
        stream = await registry.get(vendor).chat_stream(
            {"messages": MESSAGES}, model="m", credential=cred, timeout=5
        )
        await collect(stream)
    assert len({r["client"] for r in fake.requests}) == 1
