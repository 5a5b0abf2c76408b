"""A fast fake LLM upstream speaking OpenAI and Anthropic wire formats (test support).

It is a bare ASGI app (no framework) so benchmarks measure the gateway, not the fake.

Endpoints: ``POST /v1/chat/completions`` (plain and SSE), ``POST /v1/embeddings``,
``GET /v1/models``, ``POST /v1/messages`` (Anthropic, plain and SSE).

Behaviour is chosen per model name, so one server can play several upstreams at once.
``configure(model, ...)`` wins; otherwise these name conventions apply:

    slow-<secs>    wait before answering        fail-<status>  always answer that error
    flaky-<n>      first n calls answer 500     drip-<secs>    wait between stream chunks
    echo           answer the last user message (anything else: DEFAULT_CONTENT)

Misbehaving upstreams are set up with ``configure``: ``raw`` (fixed bytes, e.g. an
HTML page, with HTTP 200), ``ignore_stream`` (a JSON answer to a streaming request),
``cut_after`` and ``garbage_after`` (a stream that breaks off or turns to garbage).

Streams are sent as one write unless ``chunk_delay`` > 0 (keeps benchmarks cheap);
``max_tokens`` truncates the answer to that many words and reports ``length``.

Standalone (benchmarks): ``python -m tests.support.fake_upstream --port 9000 --workers 2``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import importlib.util
import itertools
import json
import logging
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import uvicorn

DEFAULT_CONTENT = "Hello from the fake upstream. This answer streams word by word."
DEFAULT_MODELS = ("gpt-fake", "claude-fake", "text-embedding-fake", "echo")

JSON = dict[str, Any]
Scope = dict[str, Any]


@dataclass(frozen=True)
class Behaviour:
    delay: float = 0.0  # before the response starts, so it also delays the headers
    status: int = 200
    error_message: str | None = None
    error_code: str | None = None  # the OpenAI error body's `code` (e.g. context_length_exceeded)
    error_param: str | None = None
    retry_after: str | None = None  # a Retry-After header on the error answer
    content: str | None = None
    fail_times: int = 0  # > 0: only the first n calls fail (with `status`, or 500)
    chunk_delay: float = 0.0
    echo: bool = False
    cut_after: int | None = None  # streams: drop the connection after n content chunks
    garbage_after: int | None = None  # streams: after n content chunks send a non-SSE line, then end
    ignore_stream: bool = False  # answer a streaming request with the plain JSON answer
    raw: bytes | None = None  # answer every chat call with these bytes and HTTP 200
    raw_content_type: str = "text/html; charset=utf-8"


def behaviour_from_name(model: str) -> Behaviour:
    if model == "echo":
        return Behaviour(echo=True)
    prefix, _, arg = model.partition("-")
    try:
        if prefix == "slow":
            return Behaviour(delay=float(arg))
        if prefix == "fail":
            return Behaviour(status=int(arg))
        if prefix == "flaky":
            return Behaviour(status=500, fail_times=int(arg))
        if prefix == "drip":
            return Behaviour(chunk_delay=float(arg))
    except ValueError:
        pass
    return Behaviour()


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


_OPENAI_ERROR_TYPES = {429: "rate_limit_exceeded", 401: "invalid_api_key"}
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class StreamCut(Exception):
    """Raised on purpose to abort a stream mid-way (``cut_after``)."""


def _not_a_cut(record: logging.LogRecord) -> bool:
    # uvicorn logs every app exception as an error; deliberate cuts are just noise.
    return not (record.exc_info and isinstance(record.exc_info[1], StreamCut))


logging.getLogger("uvicorn.error").addFilter(_not_a_cut)


class FakeUpstream:
    """The ASGI app plus a background uvicorn server; see the module docstring."""

    def __init__(self, *, api_key: str | None = None, max_recorded: int = 1000) -> None:
        self.api_key = api_key  # when set, requests without it get 401
        self.url = ""
        self.requests: list[dict[str, Any]] = []
        self._max_recorded = max_recorded
        self._behaviours: dict[str, Behaviour] = {}
        self._calls: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- control -------------------------------------------------------------------

    def configure(self, model: str, **behaviour: Any) -> None:
        self._behaviours[model] = replace(Behaviour(), **behaviour)
        self._calls.pop(model, None)

    def reset(self) -> None:
        self._behaviours.clear()
        self._calls.clear()
        self.requests.clear()

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(self, **server_options()))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name="fake-upstream"
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake upstream failed to start")
            time.sleep(0.005)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeUpstream:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- ASGI ----------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body: JSON = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        self._record(scope, headers, body)
        method, path = scope["method"], scope["path"]
        anthropic = path == "/v1/messages"
        if self.api_key and self.api_key not in (
            headers.get("x-api-key"),
            headers.get("authorization", "").removeprefix("Bearer "),
        ):
            return await self._error(send, 401, "invalid api key", anthropic)
        if method == "GET" and path == "/v1/models":
            models = [*DEFAULT_MODELS, *self._behaviours]
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in models]
            return await _send_json(send, 200, {"object": "list", "data": data})
        if method != "POST" or path not in (
            "/v1/chat/completions",
            "/v1/embeddings",
            "/v1/messages",
        ):
            return await self._error(send, 404, f"no route for {method} {path}", anthropic)

        model = str(body.get("model", ""))
        behaviour = self._behaviours.get(model) or behaviour_from_name(model)
        if behaviour.delay and not await _still_connected_after(receive, behaviour.delay):
            return
        status = self._failure(model, behaviour)
        if status is not None:
            message = behaviour.error_message or f"fake upstream error {status}"
            return await self._error(send, status, message, anthropic, behaviour)
        if path == "/v1/embeddings":
            return await _send_json(send, 200, _embeddings(body, model))
        if behaviour.raw is not None:
            return await _send_raw(send, behaviour.raw, behaviour.raw_content_type)
        await self._chat(send, receive, body, model, behaviour, anthropic)

    def _record(self, scope: Scope, headers: dict[str, str], body: JSON) -> None:
        self.requests.append(
            {
                "method": scope["method"],
                "path": scope["path"],
                "headers": headers,
                "body": body,
                "client": scope.get("client"),  # (host, port): shows connection reuse
            }
        )
        if len(self.requests) > self._max_recorded:
            del self.requests[: len(self.requests) - self._max_recorded]

    def _failure(self, model: str, behaviour: Behaviour) -> int | None:
        error = behaviour.status if behaviour.status >= 400 else None
        if behaviour.fail_times:
            calls = self._calls[model] = self._calls.get(model, 0) + 1
            return (error or 500) if calls <= behaviour.fail_times else None
        return error

    async def _error(
        self, send: Any, status: int, message: str, anthropic: bool, behaviour: Behaviour | None = None
    ) -> None:
        how = behaviour or Behaviour()
        if anthropic:
            kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
            payload: JSON = {"type": "error", "error": {"type": kind, "message": message}}
        else:
            kind = _OPENAI_ERROR_TYPES.get(
                status, "server_error" if status >= 500 else "invalid_request_error"
            )
            payload = {
                "error": {"message": message, "type": kind, "param": how.error_param, "code": how.error_code}
            }
        extra = [(b"retry-after", how.retry_after.encode())] if how.retry_after else []
        await _send_json(send, status, payload, extra)

    async def _chat(
        self, send: Any, receive: Any, body: JSON, model: str, behaviour: Behaviour, anthropic: bool
    ) -> None:
        messages = body.get("messages") or []
        if behaviour.echo:
            users = [m for m in messages if m.get("role") == "user"]
            content = _text(users[-1].get("content")) if users else ""
        else:
            content = DEFAULT_CONTENT if behaviour.content is None else behaviour.content
        pieces = re.findall(r"\s*\S+", content) or [content]
        limit = int(body.get("max_completion_tokens") or body.get("max_tokens") or 0)
        truncated = 0 < limit < len(pieces)
        pieces = pieces[:limit] if truncated else pieces
        texts = [_text(body.get("system")), *(_text(m.get("content")) for m in messages)]
        prompt_text = " ".join(texts)
        answer = _Answer(
            id=next(self._ids),
            model=model,
            pieces=pieces,
            truncated=truncated,
            prompt_tokens=len(prompt_text.split()) or 1,
        )
        stream = bool(body.get("stream")) and not behaviour.ignore_stream
        if anthropic:
            events = answer.anthropic_events() if stream else None
            if events is None:
                return await _send_json(send, 200, answer.anthropic_message())
        elif stream:
            options = body.get("stream_options") or {}
            events = answer.openai_chunks(bool(options.get("include_usage")))
        else:
            return await _send_json(send, 200, answer.openai_completion())
        await _send_stream(send, receive, events, behaviour)


@dataclass
class _Answer:
    id: int
    model: str
    pieces: list[str]
    truncated: bool
    prompt_tokens: int

    @property
    def completion_tokens(self) -> int:
        return len(self.pieces)

    def openai_usage(self) -> JSON:
        total = self.prompt_tokens + self.completion_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": total,
        }

    def openai_completion(self) -> JSON:
        return {
            "id": f"chatcmpl-fake{self.id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(self.pieces)},
                    "logprobs": None,
                    "finish_reason": "length" if self.truncated else "stop",
                }
            ],
            "usage": self.openai_usage(),
        }

    def openai_chunks(self, include_usage: bool) -> list[tuple[bytes, bool]]:
        """SSE events paired with whether each one is a content chunk (for cut_after)."""
        base = {
            "id": f"chatcmpl-fake{self.id}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
        }
        extra: JSON = {"usage": None} if include_usage else {}

        def chunk(delta: JSON, finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return b"data: " + _dumps({**base, "choices": [choice], **extra}) + b"\n\n"

        events = [(chunk({"role": "assistant", "content": ""}), False)]
        events += [(chunk({"content": p}), True) for p in self.pieces]
        events.append((chunk({}, "length" if self.truncated else "stop"), False))
        if include_usage:
            usage = {**base, "choices": [], "usage": self.openai_usage()}
            events.append((b"data: " + _dumps(usage) + b"\n\n", False))
        events.append((b"data: [DONE]\n\n", False))
        return events

    def _anthropic_usage(self) -> JSON:
        return {"input_tokens": self.prompt_tokens, "output_tokens": self.completion_tokens}

    def anthropic_message(self) -> JSON:
        return {
            "id": f"msg_fake{self.id}",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [{"type": "text", "text": "".join(self.pieces)}],
            "stop_reason": "max_tokens" if self.truncated else "end_turn",
            "stop_sequence": None,
            "usage": self._anthropic_usage(),
        }

    def anthropic_events(self) -> list[tuple[bytes, bool]]:
        def event(kind: str, data: JSON) -> bytes:
            return f"event: {kind}\ndata: ".encode() + _dumps({"type": kind, **data}) + b"\n\n"

        start = {**self.anthropic_message(), "content": [], "stop_reason": None}
        start["usage"] = {"input_tokens": self.prompt_tokens, "output_tokens": 1}
        block = {"type": "text", "text": ""}
        events = [
            (event("message_start", {"message": start}), False),
            (event("content_block_start", {"index": 0, "content_block": block}), False),
            (event("ping", {}), False),
        ]
        events += [
            (
                event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": p}}),
                True,
            )
            for p in self.pieces
        ]
        stop = {"stop_reason": "max_tokens" if self.truncated else "end_turn"}
        events += [
            (event("content_block_stop", {"index": 0}), False),
            (
                event(
                    "message_delta",
                    {"delta": {**stop, "stop_sequence": None}, "usage": self._anthropic_usage()},
                ),
                False,
            ),
            (event("message_stop", {}), False),
        ]
        return events


def _embeddings(body: JSON, model: str) -> JSON:
    inputs = body.get("input", "")
    if isinstance(inputs, str) or (inputs and isinstance(inputs[0], int)):
        inputs = [inputs]
    dims = int(body.get("dimensions") or 16)
    data = []
    for index, item in enumerate(inputs):
        digest = hashlib.blake2b(repr(item).encode(), digest_size=64).digest()
        vector = [digest[i % 64] / 255 - 0.5 for i in range(dims)]
        embedding: Any = vector
        if body.get("encoding_format") == "base64":
            embedding = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(len(str(i).split()) for i in inputs)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


async def _still_connected_after(receive: Any, delay: float) -> bool:
    # Waiting on receive() instead of sleeping ends the handler as soon as the client
    # gives up (e.g. its timeout fired), like a real upstream, so shutdown is not held up.
    try:
        message = await asyncio.wait_for(receive(), delay)
    except TimeoutError:
        return True
    return message.get("type") != "http.disconnect"


async def _send_json(
    send: Any, status: int, payload: JSON, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = _dumps(payload)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    headers.extend(extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_raw(send: Any, body: bytes, content_type: str) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _stop_after(events: list[tuple[bytes, bool]], content_chunks: int) -> list[tuple[bytes, bool]]:
    content_seen = 0
    for index, (_, is_content) in enumerate(events):
        content_seen += is_content
        if content_seen > content_chunks:
            return events[:index]
    return events


async def _send_stream(
    send: Any, receive: Any, events: list[tuple[bytes, bool]], behaviour: Behaviour
) -> None:
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if behaviour.cut_after is not None:
        events = _stop_after(events, behaviour.cut_after)
    elif behaviour.garbage_after is not None:
        garbage = b"<html><body>502 Bad Gateway</body></html>\n\n"
        events = [*_stop_after(events, behaviour.garbage_after), (garbage, False)]
    if behaviour.chunk_delay:
        for data, _ in events:
            await send({"type": "http.response.body", "body": data, "more_body": True})
            if not await _still_connected_after(receive, behaviour.chunk_delay):
                return
    else:
        body = b"".join(data for data, _ in events)
        await send({"type": "http.response.body", "body": body, "more_body": True})
    if behaviour.cut_after is not None:
        # Raising after the response started makes uvicorn drop the connection,
        # which is what a crashed upstream looks like to the client.
        raise StreamCut("fake upstream cut the stream")
    await send({"type": "http.response.body", "body": b""})


def server_options() -> dict[str, Any]:
    fast_loop = importlib.util.find_spec("uvloop") is not None
    fast_http = importlib.util.find_spec("httptools") is not None
    return {
        "loop": "uvloop" if fast_loop else "asyncio",
        "http": "httptools" if fast_http else "h11",
        "lifespan": "off",
        "access_log": False,
        "log_level": "warning",
        "backlog": 4096,
        "proxy_headers": False,
        "server_header": False,
        # Longer than the gateway's pool keep-alive so idle connections get reused
        # instead of racing a server-side close.
        "timeout_keep_alive": 75,
    }


def create_app() -> FakeUpstream:
    return FakeUpstream()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the fake LLM upstream.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    print(f"fake upstream on http://{args.host}:{args.port} (OpenAI base: /v1)", flush=True)
    # An import string (not an instance) lets uvicorn spawn several worker processes.
    uvicorn.run(
        "tests.support.fake_upstream:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        **server_options(),
    )


if __name__ == "__main__":
    main()
