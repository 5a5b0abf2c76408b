"""The AWS event-stream framing (``application/vnd.amazon.eventstream``), read side.

Bedrock's ConverseStream answers in binary messages, not SSE::

    total length (u32) | headers length (u32) | prelude CRC32 (u32)
    headers | payload | message CRC32 (u32)

Big-endian throughout; the prelude CRC covers the first 8 bytes, the message CRC
everything before it. A header is its name's length (u8), the name, a type (u8)
and a value whose size the type fixes (strings and bytes: a u16 length first).
``:message-type`` says what a message is: an ``event`` named by ``:event-type``, an
``exception`` (``:exception-type``, a JSON payload with the message) or an
``error`` (``:error-code``, ``:error-message``).

``EventStreamReader`` is a ``Framing`` for ``open_stream``: events come out as
``(b"", event type, payload)``; exceptions and errors raise ``UpstreamError``; a
bad checksum or length, or a body that is neither this framing nor JSON, raises too.
A body starting with ``{`` is an answer that ignored the stream (a frame can't
start so: its length would pass 2 GiB) and is read whole as JSON.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

from ..codec import loads
from ._http import summary
from ._stream import Event, not_a_stream
from .base import JSON, UpstreamError

_PRELUDE = 12  # total length, headers length, prelude CRC
_OVERHEAD = _PRELUDE + 4  # and the message CRC

# the size of a header value by type; None: a u16 length comes first (bytes, string)
_VALUE_SIZES: dict[int, int | None] = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 6: None, 7: None, 8: 8, 9: 16}

# Bedrock's stream exceptions and the HTTP status each has as a plain error answer
EXCEPTION_STATUS = {
    "validationException": 400,
    "accessDeniedException": 403,
    "resourceNotFoundException": 404,
    "modelTimeoutException": 408,
    "throttlingException": 429,
    "modelStreamErrorException": 424,
    "internalServerException": 500,
    "serviceUnavailableException": 503,
}


def _broken(what: str) -> UpstreamError:
    return not_a_stream(f"an event stream with {what}")


def parse_headers(raw: bytes) -> dict[str, Any]:
    """A message's headers; string values decoded, the others kept as raw bytes."""
    headers: dict[str, Any] = {}
    at = 0
    while at < len(raw):
        size = raw[at]
        name = raw[at + 1 : at + 1 + size].decode("utf-8", "replace")
        at += 1 + size
        if at >= len(raw) or raw[at] not in _VALUE_SIZES:
            raise _broken("a malformed header")
        kind = raw[at]
        at += 1
        length = _VALUE_SIZES[kind]
        if length is None:
            if at + 2 > len(raw):
                raise _broken("a malformed header")
            (length,) = struct.unpack_from(">H", raw, at)
            at += 2
        value = raw[at : at + length]
        if len(value) != length:
            raise _broken("a malformed header")
        at += length
        headers[name] = value.decode("utf-8", "replace") if kind == 7 else value
    return headers


def _exception(headers: dict[str, Any], payload: bytes) -> UpstreamError:
    if headers.get(":message-type") == "error":
        message = summary(headers.get(":error-message")) or str(headers.get(":error-code") or "")
        return UpstreamError(message or "Bedrock stream error", status=500)
    kind = str(headers.get(":exception-type") or "")
    try:
        body: Any = loads(payload)
    except ValueError:
        body = None
    text = (body.get("message") or body.get("Message")) if isinstance(body, dict) else None
    return UpstreamError(
        summary(text) or kind or "Bedrock stream exception",
        status=EXCEPTION_STATUS.get(kind, 500),
        code=kind or None,
    )


class EventStreamReader:
    """Frames body chunks into event-stream messages, checked; see the module docstring."""

    __slots__ = ("_buf", "_failed", "_json", "events", "max_message")

    def __init__(self, max_message: int) -> None:
        self.max_message = max_message  # also the cap of a JSON answer
        self._buf = bytearray()
        self._json: bool | None = None  # undecided until the first byte
        self.events = 0
        self._failed: UpstreamError | None = None

    def feed(self, data: bytes) -> list[Event]:
        if self._failed is not None:
            raise self._failed
        self._buf += data
        if self._json is None:
            start = bytes(self._buf).lstrip()
            if not start:
                return []
            self._json = start[:1] == b"{"
        if self._json:
            if len(self._buf) > self.max_message:
                raise UpstreamError(f"upstream answer exceeds {self.max_message} bytes", retryable=False)
            return []
        events: list[Event] = []
        while len(self._buf) >= _PRELUDE:
            try:
                event = self._next()
            except UpstreamError as exc:
                if not events:
                    raise
                self._failed = exc  # the events before it are delivered first
                break
            if event is None:
                break
            events.append(event)
        return events

    def _next(self) -> Event | None:
        total, headers_length, prelude_crc = struct.unpack_from(">III", self._buf)
        if zlib.crc32(self._buf[:8]) != prelude_crc:
            raise not_a_stream("a body that is neither an AWS event stream nor JSON")
        if total < _OVERHEAD or headers_length > total - _OVERHEAD or total > self.max_message:
            raise _broken("an impossible message length")
        if len(self._buf) < total:
            return None
        message = bytes(self._buf[:total])
        del self._buf[:total]
        (message_crc,) = struct.unpack_from(">I", message, total - 4)
        if zlib.crc32(message[:-4]) != message_crc:
            raise _broken("a bad message checksum")
        headers = parse_headers(message[_PRELUDE : _PRELUDE + headers_length])
        payload = message[_PRELUDE + headers_length : -4]
        if headers.get(":message-type", "event") != "event":
            raise _exception(headers, payload)
        self.events += 1
        name = headers.get(":event-type")
        return b"", name if isinstance(name, str) else None, payload

    def finish(self) -> JSON | None:
        if self._failed is not None:
            raise self._failed
        if self._json:
            try:
                answer: Any = loads(bytes(self._buf))
            except ValueError:
                raise not_a_stream("a body that is not valid JSON") from None
            if not isinstance(answer, dict):
                raise not_a_stream("JSON that is not an object")
            return answer
        if self._buf:
            raise _broken("a message cut off")
        if self.events == 0:
            raise not_a_stream("no events")
        return None
