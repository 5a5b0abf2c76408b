"""ASGI guards in front of every route: body size, JSON content type, NUL characters.

They run before FastAPI reads the body, so an oversize upload is refused
without being buffered past the limit, and a form post to a JSON API gets a
clear 400. A NUL character in the path or the query string is refused here,
for every route at once: PostgreSQL cannot compare text holding one, so an id
or cursor carrying it would otherwise be a 500 there and a miss on SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelux_server.errors import error_body

JSON_PREFIXES = ("/manage/", "/v1/", "/admin/")


def is_json_type(content_type: str) -> bool:
    """Whether a Content-Type value announces JSON. None at all counts as JSON:
    FastAPI reads a body without a media type as JSON."""
    kind = content_type.split(";")[0].strip().lower()
    return not kind or kind == "application/json" or kind.endswith("+json")


class BodyGuard:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"]:
            # no object has such an id: the same answer as any unknown one
            await send_error(send, 404, "not_found", "No such resource.", kind="not_found_error")
            return
        tainted = _tainted_query(scope.get("query_string", b""))
        if tainted is not None:
            await send_error(
                send, 422, "invalid_characters", f"{tainted}: must not contain NUL characters", param=tainted
            )
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        # ASGI servers give header names lower-cased; only these two are needed
        length: str | None = None
        content_type = ""
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value.decode("latin-1")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await send_error(send, 413, "body_too_large", f"Request body exceeds {self.max_bytes} bytes.")
            return
        path: str = scope["path"]
        if (
            path.startswith(JSON_PREFIXES)
            and (length is None or length != "0")
            and not is_json_type(content_type)
        ):
            await send_error(send, 400, "unsupported_content_type", "Send the body as application/json.")
            return
        if length is None:
            # chunked: read it here, so that going over the limit is a 413
            # rather than a failure inside the framework's body parsing
            buffered = await self._buffered(receive)
            if buffered is None:
                await send_error(send, 413, "body_too_large", f"Request body exceeds {self.max_bytes} bytes.")
                return
            receive = buffered
        await self.app(scope, self._limited(receive, send), send)

    async def _buffered(self, receive: Receive) -> Receive | None:
        """The whole body as one message, or None once it passes the limit."""
        chunks: list[bytes] = []
        seen = 0
        ended: Message | None = None
        while True:
            message = await receive()
            if message["type"] != "http.request":
                ended = message  # the client went away; the app hears it after the body
                break
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        pending: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]
        if ended is not None:
            pending.append(ended)

        async def replay() -> Message:
            return pending.pop(0) if pending else await receive()

        return replay

    def _limited(self, receive: Receive, send: Send) -> Receive:
        seen = 0

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        return wrapped


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body exceeds {limit} bytes.")


def _tainted_query(raw: bytes) -> str | None:
    """The first query parameter holding a NUL character, if any."""
    if b"%00" not in raw and b"\x00" not in raw:
        return None
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name
    return None


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    *,
    kind: str = "invalid_request_error",
    param: str | None = None,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Answer with the contract's error body, from code that runs outside FastAPI's handlers."""
    body = json.dumps(error_body(kind, code, message, **({} if param is None else {"param": param}))).encode()
    raw: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
