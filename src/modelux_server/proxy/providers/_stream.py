"""Streaming requests to an upstream: the scaffold every adapter shares.

``open_stream`` posts the request, frames the answer with ``StreamReader`` and
hands the events to the adapter's ``Translation``, which turns them into
OpenAI SSE bytes; the adapters differ only in that translation (and Bedrock,
whose answer is AWS event-stream binary, in the ``Framing`` too).

An upstream that accepted ``stream: true`` with a 200 may still answer with
something else: a JSON completion (it ignored ``stream``), or an HTML page from
a proxy in front of it. ``StreamReader`` tells these apart from the first bytes:
a body starting with ``{`` is read whole as JSON, one starting with an SSE
field is framed into events, and every event is checked to be SSE. Anything
else raises ``UpstreamError``; before the first chunk that is still a clean 502
(or a fallback), after it the gateway ends its stream with an error event.
"""

# The contract passes `timeout` explicitly: adapters apply it per HTTP phase and
# as an overall deadline, which an outer asyncio.timeout alone cannot express.
# ruff: noqa: ASYNC109

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable
from typing import Any, Protocol

from ..codec import loads
from ._http import SSE_DONE, HttpClient, sse_event, stream_post, summary
from .base import JSON, ChatStream, UpstreamError, Usage

Event = tuple[bytes, str | None, bytes]  # (event, name, data): see StreamReader

# How an SSE line can start (WHATWG HTML, "event stream interpretation"); a field
# name alone on its line is legal too.
_FIELDS = (b"data:", b"event:", b"id:", b"retry:", b":")
_BARE_FIELDS = frozenset((b"data", b"event", b"id", b"retry"))
_LONGEST_FIELD = len(b"retry:")

_UNDECIDED, _SSE, _JSON = 0, 1, 2


def not_a_stream(what: str) -> UpstreamError:
    return UpstreamError(f"upstream answered the stream request with {what}", retryable=True)


class StreamReader:
    """Frames upstream body chunks into checked SSE events, or collects a JSON answer.

    ``feed`` returns the events completed by a chunk as ``(event, name, data)``:
    the event's bytes without their blank-line terminator, its ``event:`` name and
    its joined ``data:`` payload. ``finish`` is called once the body ended: it
    returns the JSON object when the upstream answered JSON, else None. A JSON
    answer larger than ``max_json`` bytes raises.
    """

    __slots__ = ("_buf", "_failed", "_mode", "events", "max_json")

    def __init__(self, max_json: int) -> None:
        self.max_json = max_json
        # A bytearray, so a long event or JSON body arriving in many small reads is
        # appended to instead of copied again on every read.
        self._buf = bytearray()
        self._mode = _UNDECIDED
        self.events = 0  # events with a data field seen so far
        # a bad event that followed good ones in the same read: raised on the next call
        self._failed: UpstreamError | None = None

    def feed(self, data: bytes) -> list[Event]:
        if self._failed is not None:
            raise self._failed
        if self._mode == _UNDECIDED:
            data = self._decide(bytes(self._buf) + data)
            self._buf.clear()
            if self._mode == _UNDECIDED:
                self._buf += data
                return []
        if self._mode == _JSON:
            self._buf += data
            if len(self._buf) > self.max_json:
                # held whole until it ends, so the cap of a plain answer applies
                raise UpstreamError(f"upstream answer exceeds {self.max_json} bytes", retryable=False)
            return []
        if data[:1] == b"\n" and self._buf[-1:] == b"\r":
            del self._buf[-1]  # a CRLF split between two reads
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        scan_from = max(0, len(self._buf) - 1)  # a terminator may straddle two reads
        self._buf += data
        end = self._buf.rfind(b"\n\n", scan_from)
        if end < 0:
            return []
        complete = bytes(self._buf[:end])
        del self._buf[: end + 2]
        events: list[Event] = []
        for raw in complete.split(b"\n\n"):
            if not raw.strip():
                continue
            try:
                events.append(self._event(raw))
            except UpstreamError as exc:
                if not events:
                    raise
                # The events before it are the upstream's answer so far: they are
                # delivered first, whether they came in this read or an earlier one.
                self._failed = exc
                break
        return events

    def finish(self) -> JSON | None:
        if self._failed is not None:
            raise self._failed
        rest = bytes(self._buf)
        self._buf.clear()
        if self._mode == _JSON:
            try:
                answer: Any = loads(rest)
            except ValueError:
                raise not_a_stream("a body that is not valid JSON") from None
            if not isinstance(answer, dict):
                raise not_a_stream("JSON that is not an object")
            if "error" in answer:
                err = answer["error"]
                reason = summary(err.get("message") if isinstance(err, dict) else err)
                raise not_a_stream(f"an error: {reason or 'no message'}")
            return answer
        if rest.strip():
            # Servers may end the last event without its blank line; anything else
            # left over is not SSE and raises here.
            self._event(rest.replace(b"\r\n", b"\n"))
        if self.events == 0:
            raise not_a_stream("no events" if self._mode == _SSE else "an empty body")
        return None

    def _decide(self, start: bytes) -> bytes:
        start = start.removeprefix(b"\xef\xbb\xbf").lstrip()  # a UTF-8 BOM may open an event stream
        if start[:1] == b"{":
            self._mode = _JSON
        elif b"\n" in start or len(start) >= _LONGEST_FIELD:
            first_line = start.split(b"\n", 1)[0].rstrip(b"\r")
            if not start.startswith(_FIELDS) and first_line not in _BARE_FIELDS:
                raise not_a_stream("a body that is neither an event stream nor JSON")
            self._mode = _SSE
        return start

    def _event(self, event: bytes) -> Event:
        name: str | None = None
        data: list[bytes] = []
        for line in event.split(b"\n"):
            if line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line.startswith(b"event:"):
                name = line[6:].strip().decode("utf-8", "replace")
            elif line == b"data":
                data.append(b"")
            elif line and not line.startswith(_FIELDS) and line not in _BARE_FIELDS:
                raise not_a_stream("something that is not an event stream")
        if data:
            self.events += 1
        return event, name, b"\n".join(data)


class Framing(Protocol):
    """How a streamed body becomes events: ``StreamReader`` for SSE, or a binary framing.

    Built per stream with the cap for a JSON answer; ``feed`` and ``finish`` behave as
    ``StreamReader``'s do.
    """

    def feed(self, data: bytes) -> list[Event]: ...

    def finish(self) -> JSON | None: ...


class Translation(Protocol):
    """What an adapter adds to ``open_stream``: its upstream's events as OpenAI SSE bytes.

    ``events`` receives the events one read of the body completed and returns the
    bytes to relay (empty for none); it may set ``stream.usage`` and raise
    ``UpstreamError``. ``finished`` turns True at the upstream's end marker: the
    rest of the body is then read but not translated. When the body ends without
    the marker, ``end`` receives ``StreamReader.finish()`` (the JSON answer of an
    upstream that ignored ``stream``, else None) and returns the last bytes.
    """

    finished: bool

    def events(self, stream: ChatStream, events: list[Event]) -> bytes: ...

    def end(self, stream: ChatStream, answer: JSON | None) -> bytes: ...


async def open_stream(
    client: HttpClient,
    url: str,
    *,
    headers: dict[str, str],
    payload: JSON | bytes,
    timeout: float,
    translation: Translation,
    framing: Callable[[int], Framing] = StreamReader,
) -> ChatStream:
    """POST a streaming request and return its ``ChatStream`` once the first chunk is ready."""

    async def relay(stream: ChatStream) -> AsyncGenerator[bytes, None]:
        reader = framing(client.max_bytes)
        async with stream_post(client, url, headers=headers, payload=payload, timeout=timeout) as body:
            async for data in body:
                if translation.finished:
                    # Keep reading to the end of the body: a connection released
                    # mid-body cannot go back to the keep-alive pool.
                    continue
                out = translation.events(stream, reader.feed(data))
                if out:
                    yield out
        if translation.finished:
            return
        last = translation.end(stream, reader.finish())
        if last:
            yield last

    return await ChatStream.open(relay, timeout)


def stream_error(payload: bytes, default: str) -> UpstreamError:
    """An error the upstream reported inside its stream, as a bounded summary."""
    try:
        err = loads(payload).get("error")
    except (ValueError, AttributeError):
        err = None
    code = err.get("code") if isinstance(err, dict) else None
    message = summary(err.get("message") if isinstance(err, dict) else err)
    return UpstreamError(message or default, status=code if isinstance(code, int) else None)


def completion_chunks(answer: JSON, usage: Usage | None = None) -> list[bytes]:
    """A ``chat.completion`` as the SSE an OpenAI stream would have carried.

    Each choice becomes one chunk with the whole message as its delta and one with
    its ``finish_reason``; a usage-only chunk follows when ``usage`` is given.
    Raises ``UpstreamError`` when ``answer`` has no choices to deliver.
    """
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
        raise not_a_stream("JSON that is not a chat completion")
    base: JSON = {
        "id": answer.get("id") or "chatcmpl-",
        "object": "chat.completion.chunk",
        "created": answer.get("created") or int(time.time()),
        "model": answer.get("model") or "",
    }
    if answer.get("system_fingerprint"):
        base["system_fingerprint"] = answer["system_fingerprint"]
    out: list[bytes] = []
    for position, choice in enumerate(choices):
        index = choice.get("index", position)
        out.append(sse_event({**base, "choices": [_first_chunk(index, choice)]}))
        finish = {
            "index": index,
            "delta": {},
            "logprobs": None,
            "finish_reason": choice.get("finish_reason") or "stop",
        }
        out.append(sse_event({**base, "choices": [finish]}))
    if usage is not None:
        out.append(sse_event({**base, "choices": [], "usage": usage.to_openai()}))
    out.append(SSE_DONE)
    return out


def _first_chunk(index: object, choice: JSON) -> JSON:
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    delta: JSON = {"role": message.get("role") or "assistant", "content": message.get("content")}
    for key in ("refusal", "function_call"):
        if message.get(key) is not None:
            delta[key] = message[key]
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls:
        # In a stream every tool call carries its position in the message.
        delta["tool_calls"] = [
            {**call, "index": i} if isinstance(call, dict) else call for i, call in enumerate(calls)
        ]
    return {"index": index, "delta": delta, "logprobs": choice.get("logprobs"), "finish_reason": None}
