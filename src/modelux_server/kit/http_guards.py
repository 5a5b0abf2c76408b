"""ASGI guards in front of every route: body size and JSON content type.

They run before FastAPI reads the body, so an oversize upload is refused
without being buffered, and a form post to a JSON API gets a clear 400.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON_PREFIXES = ("/manage/", "/v1/", "/admin/")


def _error(status: int, code: str, message: str) -> bytes:
    return json.dumps({"error": {"type": "invalid_request_error", "code": code, "message": message}}).encode()


class BodyGuard:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
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
            await _reply(send, 413, "body_too_large", f"Request body exceeds {self.max_bytes} bytes.")
            return
        path: str = scope["path"]
        if path.startswith(JSON_PREFIXES) and (length is None or length != "0"):
            ctype = content_type.split(";")[0].strip().lower()
            if ctype and ctype != "application/json" and not ctype.endswith("+json"):
                await _reply(send, 400, "unsupported_content_type", "Send the body as application/json.")
                return
        await self.app(scope, self._limited(receive, send), send)

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


async def _reply(send: Send, status: int, code: str, message: str) -> None:
    body = _error(status, code, message)
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
