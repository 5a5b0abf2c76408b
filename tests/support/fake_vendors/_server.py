"""What the vendor fakes share: a bare ASGI app on a loopback port, requests recorded.

Each fake answers from ``handle(request)``; the request is read whole first. The
answers follow one naming convention on the model (or deployment) name:

    fail-<status>   answer that HTTP error in the vendor's own error shape
    echo            answer the last user message (anything else: DEFAULT_CONTENT)
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qs

import uvicorn

from tests.support.fake_upstream import server_options

DEFAULT_CONTENT = "Hello from the fake vendor, word by word."
JSON = dict[str, Any]
Send = Callable[[JSON], Awaitable[None]]


@dataclass
class Request:
    method: str
    path: str  # percent-decoded, as ASGI gives it
    raw_path: str  # as it came on the wire: what a signature covers
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    json: Any = field(default=None)


def words(text: str) -> list[str]:
    return re.findall(r"\s*\S+", text)


def failure_status(model: str) -> int | None:
    prefix, _, status = model.partition("-")
    return int(status) if prefix == "fail" and status.isdigit() else None


Headers = tuple[tuple[bytes, bytes], ...]


async def send_json(send: Send, status: int, payload: Any, headers: Headers = ()) -> None:
    body = json.dumps(payload).encode()
    await send_bytes(send, status, body, "application/json", headers)


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    headers: Headers = (),
    pieces: int = 0,
) -> None:
    """Answer ``body``; with ``pieces`` > 0, in writes of that many bytes (framing tests)."""
    start = [(b"content-type", content_type.encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    step = pieces or len(body) or 1
    for at in range(0, len(body), step):
        await send({"type": "http.response.body", "body": body[at : at + step], "more_body": True})
    await send({"type": "http.response.body", "body": b""})


class LoopbackFake:
    """A fake vendor API on 127.0.0.1 in a background thread (like ``FakeUpstream``)."""

    name = "fake-vendor"

    def __init__(self) -> None:
        self.url = ""
        self.requests: list[Request] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    async def handle(self, request: Request, send: Send) -> None:
        raise NotImplementedError

    async def __call__(self, scope: JSON, receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()}
        request = Request(
            method=scope["method"],
            path=scope["path"],
            raw_path=scope["raw_path"].decode("latin-1"),
            query=query,
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
            body=body,
        )
        try:
            request.json = json.loads(body) if body else None
        except ValueError:
            request.json = None
        self.requests.append(request)
        await self.handle(request, send)

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(self, **server_options()))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name=self.name
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} failed to start")
            time.sleep(0.005)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
