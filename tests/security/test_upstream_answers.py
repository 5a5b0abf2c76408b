"""What an upstream answers is bounded and summarised before anyone sees it.

An upstream is whatever a tenant pointed a credential at: its error pages and
oversized bodies must not be relayed, and connection failures must not tell
which ports are open.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from modelux_server.kit.egress import EgressPolicy
from modelux_server.proxy.providers import ProviderRegistry, UpstreamCredential, UpstreamError
from tests.conftest import make_org
from tests.security.test_egress import CHAT, serving
from tests.support.fake_upstream import FakeUpstream

SECRET_PAGE = b"<html><body><h1>503</h1><pre>internal: db=10.1.2.3 password=hunter2</pre></body></html>"
BIG = 11 * 1024 * 1024
STREAM_CAP = 64 * 1024


class HostileUpstream(FakeUpstream):
    """An upstream that misbehaves on purpose, chosen by model name."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        model = json.loads(raw or b"{}").get("model", "")
        self.requests.append({"path": scope["path"], "model": model})
        if model == "html-503":
            await _answer(send, 503, SECRET_PAGE, b"text/html")
        elif model == "noisy-400":
            text = "bad input\r\nX-Injected: yes\x1b[31m\u202e" + "A" * 5000
            await _answer(send, 400, json.dumps({"error": {"message": text}}).encode())
        elif model == "huge-json":
            await _answer(send, 200, b'{"pad": "' + b"x" * BIG + b'"}')
        elif model == "huge-chunked":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            piece = b"x" * 65536
            await send({"type": "http.response.body", "body": b'{"pad": "', "more_body": True})
            for _ in range(BIG // len(piece)):
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b'"}'})
        elif model == "endless-stream":
            headers = [(b"content-type", b"text/event-stream")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": model}
            event = (
                b"data: "
                + json.dumps({**chunk, "choices": [{"index": 0, "delta": {"content": "y" * 900}}]}).encode()
            )
            for _ in range(4 * STREAM_CAP // len(event)):
                await send({"type": "http.response.body", "body": event + b"\n\n", "more_body": True})
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
        else:
            await _answer(send, 404, b'{"error": {"message": "no such model"}}')


async def _answer(send: Any, status: int, body: bytes, content_type: bytes = b"application/json") -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileUpstream]:
    with HostileUpstream() as server:
        yield server


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_upstream_error_bodies_and_oversized_answers_reach_no_caller(
    settings: Settings, clock: FrozenClock, hostile: HostileUpstream
) -> None:
    allowed = settings.model_copy(update={"egress_allow": "127.0.0.0/8"})
    async with serving(allowed, clock) as (client, rt):
        org = await make_org(rt)
        h = org.headers
        project = (await client.post("/manage/v1/projects", json={"name": "app"}, headers=h)).json()["data"]
        key = (await client.post("/manage/v1/api-keys", json={"project_id": project["id"]}, headers=h)).json()
        auth = {"Authorization": f"Bearer {key['data']['key']}"}
        for vendor, base_url in (
            ("openai", f"{hostile.url}/v1"),
            ("groq", f"http://127.0.0.1:{_closed_port()}/v1"),
        ):
            body = {"vendor": vendor, "name": vendor, "api_key": "sk-test-0000", "base_url": base_url}
            assert (await client.post("/manage/v1/providers", json=body, headers=h)).status_code == 201

        async def call(model: str) -> dict[str, Any]:
            r = await client.post("/v1/chat/completions", json={"model": model, **CHAT}, headers=auth)
            assert r.status_code == 502, r.text
            error: dict[str, Any] = r.json()["error"]
            assert error["type"] == "upstream_error" and error["code"] == "upstream_error"
            return error

        page = await call("openai/html-503")
        assert "hunter2" not in json.dumps(page) and "<" not in page["message"]
        assert page["message"] == "The upstream provider failed: upstream returned HTTP 503"

        for model in ("openai/huge-json", "openai/huge-chunked"):
            error = await call(model)
            assert "exceeds 10485760 bytes" in error["message"]

        unreachable = await call("groq/any-model")
        assert unreachable["message"] == "The upstream provider failed: upstream unreachable"

        r = await client.post(
            "/v1/chat/completions", json={"model": "openai/noisy-400", **CHAT}, headers=auth
        )
        assert r.status_code in (400, 502), r.text
        message = r.json()["error"]["message"]
        assert "bad input X-Injected: yes" in message
        assert len(message) < 300 and "\r" not in message and "\n" not in message
        assert "\x1b" not in message and "\u202e" not in message


async def test_a_stream_past_its_total_cap_stops(hostile: HostileUpstream) -> None:
    cred = UpstreamCredential("openai", "sk-test", f"{hostile.url}/v1")
    policy = EgressPolicy.parse("127.0.0.0/8")
    async with ProviderRegistry(egress=policy, stream_max_bytes=STREAM_CAP) as registry:
        stream = await registry.get("openai").chat_stream(
            CHAT, model="endless-stream", credential=cred, timeout=5
        )
        received = 0
        with pytest.raises(UpstreamError) as err:
            async with stream:
                async for chunk in stream:
                    received += len(chunk)
        assert f"exceeds {STREAM_CAP} bytes" in err.value.message
        assert received <= STREAM_CAP
        assert registry.client.in_flight == 0


async def test_a_non_streamed_answer_past_the_cap_is_refused_announced_or_chunked(
    hostile: HostileUpstream,
) -> None:
    cred = UpstreamCredential("openai", "sk-test", f"{hostile.url}/v1")
    async with ProviderRegistry(egress=EgressPolicy.parse("127.0.0.0/8"), max_bytes=4096) as registry:
        for model in ("huge-json", "huge-chunked"):
            with pytest.raises(UpstreamError) as err:
                await registry.get("openai").chat(CHAT, model=model, credential=cred, timeout=10)
            assert err.value.message == "upstream answer exceeds 4096 bytes" and not err.value.retryable


@pytest.mark.parametrize("status", [401, 500])
async def test_an_html_error_page_becomes_a_status_line(status: int) -> None:
    from modelux_server.proxy.providers._http import error_from_response

    error = error_from_response(status, SECRET_PAGE)
    assert error.message == f"upstream returned HTTP {status}" and error.status == status
    shaped = error_from_response(status, b'{"error": {"message": "model \\u0000not\\nfound"}}')
    assert shaped.message == "model not found"
