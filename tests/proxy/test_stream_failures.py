"""Streams from misbehaving upstreams: the answer is converted, refused, or ended in-band.

An upstream that ignores `stream` and answers JSON is converted to SSE; one that
answers anything else that is not an event stream (an HTML error page) is a 502
before the gateway commits to a 200, so fallback still applies. A stream that
fails after the first byte ends with an `error` event (no `[DONE]`), which the
official SDK raises as `APIError`, and the log gets one warning line.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import select

from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from modelux_server.models import RequestLog
from tests.proxy.conftest import Tenant, make_tenant
from tests.support.fake_upstream import DEFAULT_CONTENT, FakeUpstream
from tests.support.live_server import LiveServer

MSG = [{"role": "user", "content": "hi"}]
HTML = b"<!DOCTYPE html>\n<html><head><title>Welcome</title></head>\n\n<body>nginx</body></html>\n"


@pytest.fixture
def counter_backend() -> str:  # stream handling does not depend on the counter backend
    return "local"


@pytest.fixture
def server_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog, also fed by uvicorn's error logger (it does not propagate to the root)."""
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addHandler(caplog.handler)
    yield caplog
    uvicorn_log.removeHandler(caplog.handler)


def model(upstream: FakeUpstream, **behaviour: Any) -> str:
    name = f"m-{uuid.uuid4().hex[:8]}"
    upstream.configure(name, **behaviour)
    return name


def sdk(t: Tenant) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=t.key, base_url=f"{t.base}/v1", max_retries=0)


def post_stream(t: Tenant, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{t.base}/v1/chat/completions",
        json={"messages": MSG, "stream": True, **body},
        headers={"Authorization": f"Bearer {t.key}"},
        timeout=10,
    )


def events(raw: bytes) -> list[bytes]:
    assert raw.endswith(b"\n\n"), raw
    return [e.removeprefix(b"data: ") for e in raw.split(b"\n\n") if e]


def logged(live: LiveServer, request_id: str) -> RequestLog:
    async def find() -> RequestLog:
        await live.runtime.proxy.request_log.flush()
        async with live.runtime.db.session() as s:
            return (
                await s.execute(select(RequestLog).where(RequestLog.request_id == request_id))
            ).scalar_one()

    return live.call(find())


def used(t: Tenant) -> int:
    return int(t.billing()["meters"]["monthly_requests"]["used"])


# -- a JSON answer to a stream request --------------------------------------------------


async def test_a_json_answer_to_a_stream_request_reaches_the_sdk_as_a_stream(
    tenant: Tenant, upstream: FakeUpstream
) -> None:
    name = model(upstream, ignore_stream=True)
    stream = await sdk(tenant).chat.completions.create(
        model=f"openai/{name}", messages=MSG, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == DEFAULT_CONTENT
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 11


def test_a_json_answer_to_a_stream_request_is_valid_sse_and_logged_with_its_usage(
    tenant: Tenant, upstream: FakeUpstream, live: LiveServer
) -> None:
    name = model(upstream, ignore_stream=True, content="two words")
    r = post_stream(tenant, {"model": f"openai/{name}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    *chunks, done = events(r.content)
    assert done == b"[DONE]"
    parsed = [json.loads(c) for c in chunks]
    assert all(p["object"] == "chat.completion.chunk" for p in parsed)
    assert "".join(p["choices"][0]["delta"].get("content") or "" for p in parsed) == "two words"
    assert parsed[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in p for p in parsed)  # the client did not ask for it
    row = logged(live, r.headers["x-modelux-request-id"])
    assert (row.status, row.completion_tokens, row.stream) == (200, 2, True)


def test_an_anthropic_json_answer_to_a_stream_request_is_translated(
    tenant: Tenant, upstream: FakeUpstream
) -> None:
    name = model(upstream, ignore_stream=True, content="bonjour tout le monde")
    r = post_stream(tenant, {"model": f"anthropic/{name}"})
    assert r.status_code == 200
    *chunks, done = events(r.content)
    parsed = [json.loads(c) for c in chunks]
    assert done == b"[DONE]"
    assert "".join(p["choices"][0]["delta"].get("content") or "" for p in parsed) == "bonjour tout le monde"


# -- something that is not a stream at all ----------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (HTML, "text/html; charset=utf-8"),
        (HTML, "text/event-stream"),  # a wrong content type does not make it SSE
        (b"Service temporarily unavailable", "text/plain"),
        (b'{"object": "list", "data": []}', "application/json"),  # JSON, but no completion
        (b'{"error": {"message": "quota exceeded", "type": "insufficient_quota"}}', "application/json"),
        (b"", "text/event-stream"),
    ],
)
@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_a_stream_request_answered_with_something_else_is_a_502(
    tenant: Tenant,
    upstream: FakeUpstream,
    live: LiveServer,
    vendor: str,
    body: bytes,
    content_type: str,
) -> None:
    name = model(upstream, raw=body, raw_content_type=content_type)
    before = used(tenant)
    r = post_stream(tenant, {"model": f"{vendor}/{name}"})
    assert r.status_code == 502, r.text
    error = r.json()["error"]
    assert error["type"] == "upstream_error" and error["message"]
    assert b"nginx" not in r.content
    row = logged(live, r.headers["x-modelux-request-id"])
    assert (row.status, row.counted) == (502, True)
    assert used(tenant) == before + 1  # admitted and sent upstream: it counts


def test_a_non_sse_answer_falls_back_to_the_next_target(tenant: Tenant, upstream: FakeUpstream) -> None:
    name = model(upstream, raw=HTML)
    with tenant.manage() as m:
        r = m.post(
            "/routing-configs",
            json={
                "project_id": tenant.project_id,
                "slug": "html-first",
                "strategy": "fallback",
                "targets": [{"model": f"openai/{name}"}, {"model": "anthropic/claude-fake"}],
            },
        )
        assert r.status_code == 201, r.text
    r = post_stream(tenant, {"model": "@html-first"})
    assert r.status_code == 200 and r.headers["x-modelux-provider-used"] == "anthropic"
    assert events(r.content)[-1] == b"[DONE]"


# -- a stream that fails after it started ----------------------------------------------


BROKEN = [
    pytest.param({"cut_after": 2, "chunk_delay": 0.01}, id="connection-cut"),
    pytest.param({"garbage_after": 2, "chunk_delay": 0.01}, id="garbage"),
]


@pytest.mark.parametrize("behaviour", BROKEN)
@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
async def test_a_stream_that_breaks_off_raises_api_error_in_the_sdk(
    tenant: Tenant, upstream: FakeUpstream, vendor: str, behaviour: dict[str, Any]
) -> None:
    name = model(upstream, **behaviour)
    stream = await sdk(tenant).chat.completions.create(model=f"{vendor}/{name}", messages=MSG, stream=True)
    received: list[str] = []
    with pytest.raises(openai.APIError) as failed:
        async for chunk in stream:
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert not isinstance(failed.value, openai.APIConnectionError)  # an error event, not a cut
    assert failed.value.body["code"] == "upstream_stream_interrupted"  # type: ignore[index]
    assert failed.value.body["type"] == "upstream_error"  # type: ignore[index]
    assert "".join(received) == "Hello from"  # what arrived before the failure was delivered


@pytest.mark.parametrize("behaviour", BROKEN)
def test_a_stream_that_breaks_off_ends_with_an_error_event_and_one_warning(
    tenant: Tenant,
    upstream: FakeUpstream,
    live: LiveServer,
    server_log: pytest.LogCaptureFixture,
    behaviour: dict[str, Any],
) -> None:
    name = model(upstream, **behaviour)
    before = used(tenant)
    server_log.clear()
    r = post_stream(tenant, {"model": f"openai/{name}"})  # a cut chunked body would raise here
    assert r.status_code == 200
    *chunks, last = events(r.content)
    assert all(json.loads(c)["object"] == "chat.completion.chunk" for c in chunks)
    error = json.loads(last)["error"]
    assert error["type"] == "upstream_error" and error["code"] == "upstream_stream_interrupted"
    assert b"[DONE]" not in r.content and b"<html>" not in r.content

    request_id = r.headers["x-modelux-request-id"]
    row = logged(live, request_id)
    assert (row.status, row.error_code, row.counted) == (502, "upstream_stream_interrupted", True)
    assert used(tenant) == before + 1
    noteworthy = [rec for rec in server_log.records if rec.levelno >= logging.WARNING]
    assert [(rec.levelname, rec.name) for rec in noteworthy] == [("WARNING", "modelux.proxy")]
    assert noteworthy[0].exc_info is None and request_id in noteworthy[0].getMessage()


def test_a_stream_past_the_size_cap_ends_with_an_error_event(
    proxy_settings: Settings, clock: FrozenClock, upstream: FakeUpstream
) -> None:
    settings = proxy_settings.model_copy(update={"upstream_stream_max_bytes": 2048})
    with LiveServer(settings, clock=clock) as live:
        t = make_tenant(live, upstream)
        name = model(upstream, content=" ".join(["word"] * 200), chunk_delay=0.001)
        r = post_stream(t, {"model": f"openai/{name}"})
        assert r.status_code == 200
        *chunks, last = events(r.content)
        assert len(chunks) > 3
        assert json.loads(last)["error"]["code"] == "upstream_stream_interrupted"
        row = logged(live, r.headers["x-modelux-request-id"])
        assert (row.status, row.error_code) == (502, "upstream_stream_interrupted")
        metrics = httpx.get(f"{t.base}/metrics").text
        assert 'modelux_upstream_errors_total{kind="stream_interrupted",provider="openai"} 1.0' in metrics
