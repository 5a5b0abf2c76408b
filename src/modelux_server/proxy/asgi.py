"""The few ASGI pieces the `/v1` routes need: read the body, find a header, send JSON.

The proxy routes are plain ASGI apps (see endpoints.py for why); these helpers keep
them as readable as request/response code without building Request and Response
objects for every call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

RawHeaders = list[tuple[bytes, bytes]]
_JSON = (b"content-type", b"application/json")


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header; ``name`` in lower case, as servers deliver it."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


async def read_body(receive: Receive) -> bytes:
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        return message.get("body", b"")  # type: ignore[no-any-return]  # the usual single chunk
    chunks: list[bytes] = []
    while True:
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = await receive()


# Printable ASCII but "%": what a header value keeps as it is.
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def header_value(text: str) -> bytes:
    """A value for a response header: printable ASCII as it is, anything else percent-encoded.

    Header values are bytes in Latin-1 at best, and a model name may be in any script,
    so a value holding anything else (or a "%") is sent as percent-encoded UTF-8
    (RFC 3986), which `urllib.parse.unquote` reverses. Control characters cannot
    reach the header that way either.
    """
    if text.isascii() and text.isprintable() and "%" not in text:
        return text.encode("ascii")
    return quote(text, safe=_HEADER_SAFE).encode("ascii")


def raw_headers(headers: dict[str, str]) -> RawHeaders:
    return [(k.lower().encode("latin-1"), header_value(v)) for k, v in headers.items()]


async def send_json(send: Send, status: int, body: bytes, headers: RawHeaders) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [_JSON, (b"content-length", b"%d" % len(body)), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Endpoint:
    """Wraps a handler so Starlette's `Route` calls it as an ASGI app.

    A bare function would be taken for a request/response endpoint and wrapped in
    Request and Response objects again.
    """

    __slots__ = ("handler",)

    def __init__(self, handler: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.handler(scope, receive, send)
