"""Running a surface's request through the chat completions pipeline, and back.

`serve` is `chat_completions` (endpoints.py) with two translations around it: the
surface's request into an OpenAI chat body before `ProxyCall.prepare_body`, and
the chat answer (or stream) into the surface's shape after the executor. Every
step in between is the chat path's own code, so a surface cannot drift from it
on authentication, limits, counting or logging.

A stream is translated from the bytes `endpoints.relay` produces, which is what
a chat caller would read: the relay keeps doing the request log, the metrics and
the in-band error event, and the surface only reads its chunks, its `[DONE]` and
its error event. Nothing is buffered: each chunk is translated as it arrives.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from modelux_server.errors import ModeluxError, UpstreamFailed
from modelux_server.proxy.asgi import read_body
from modelux_server.proxy.checks import parse_body
from modelux_server.proxy.codec import loads
from modelux_server.proxy.providers._stream import StreamReader
from modelux_server.proxy.providers.base import UpstreamError
from modelux_server.proxy.surfaces.chat import JSON

if TYPE_CHECKING:
    from modelux_server.proxy.execute import Outcome

# The relay's own bytes are always an event stream; the cap only bounds a JSON body.
_MAX_JSON = 1 << 20


class Renderer(Protocol):
    """One streamed answer in a surface's event format; each method returns bytes to send."""

    def start(self) -> bytes:
        """What opens the stream, before the first chunk."""
        ...

    def chunk(self, chunk: JSON) -> bytes:
        """One `chat.completion.chunk` (the usage-only chunk included)."""
        ...

    def done(self) -> bytes:
        """The chat stream's `[DONE]`: the answer is complete."""
        ...

    def failed(self, error: JSON) -> bytes:
        """The stream broke off; `error` is the contract's `error` object."""
        ...


class Surface:
    """A wire format served by translating to and from OpenAI chat.

    The defaults are an OpenAI-shaped surface: the key in `Authorization`, errors
    in the contract's shape (which is OpenAI's).
    """

    endpoint = "surface"  # the request log's `endpoint`

    def authorization(self, scope: Scope) -> str | None:
        """The `Authorization` value to authenticate with; None reads the header itself."""
        return None

    def sending(self, send: Send) -> Send:
        """`send` for this request's answers, e.g. to put errors in the surface's shape."""
        return send

    def to_chat(self, request: JSON) -> JSON:
        """The request as an OpenAI chat body; raises ModeluxError for what cannot be translated."""
        raise NotImplementedError

    def answer(self, chat: JSON, request: JSON) -> JSON:
        """A `chat.completion` as the surface's answer."""
        raise NotImplementedError

    def renderer(self, request: JSON) -> Renderer:
        raise NotImplementedError


async def serve(surface: Surface, scope: Scope, receive: Receive, send: Send) -> None:
    # endpoints.py imports the surfaces to register their routes, so the pipeline
    # is imported when the first request arrives rather than at import time.
    from modelux_server.proxy.endpoints import ProxyCall, relay

    send = surface.sending(send)
    call = ProxyCall(scope["app"].state.services.proxy, scope, surface.endpoint)
    outcome: Outcome | None = None
    try:
        try:
            caller, org = await call.authorize(surface.authorization(scope))
            request = parse_body(await read_body(receive))
            call.model = request["model"]  # logged even when the translation refuses the request
            body = surface.to_chat(request)
            caller, org, route, creds, body = await call.prepare_body("chat", caller, org, body)
            await call.admit(caller, org)
            outcome = await call.state.executor.call(route, creds, body, "chat", call.stream)
        except ModeluxError as exc:
            await call.fail(send, exc)
            return
        if not call.stream:
            answer = surface.answer(outcome.body or {}, request)
            await call.answer(send, replace(outcome, body=answer, raw=None))
            return
        response = StreamingResponse(
            translate(relay(call, outcome, True), surface.renderer(request)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
        response.raw_headers.extend(call.headers(outcome))
        await response(scope, receive, send)
    finally:
        await call.wrap_up(outcome)


async def translate(chat: AsyncGenerator[bytes, None], renderer: Renderer) -> AsyncIterator[bytes]:
    """The relay's chat SSE as the renderer's events.

    The relay is read to its end even after `[DONE]`: it records the usage and
    writes the request log once the upstream's body is finished. Closing this
    generator early (the client left) closes the relay too, which logs then.
    """
    reader = StreamReader(_MAX_JSON)
    finished = False
    async with aclosing(chat) as source:
        yield renderer.start()
        async for data in source:
            if finished:
                continue
            out: list[bytes] = []
            try:
                events = reader.feed(data)
            except UpstreamError:  # not our relay's bytes; nothing sensible can follow
                events, finished = [], True
                out.append(renderer.failed(_interrupted()))
            for _event, _name, payload in events:
                if finished:
                    break
                finished, rendered = _render(renderer, payload)
                out.append(rendered)
            if out:
                yield b"".join(out)
        if not finished:  # the relay always ends with [DONE] or an error event; this is neither
            yield renderer.failed(_interrupted())


def _render(renderer: Renderer, payload: bytes) -> tuple[bool, bytes]:
    """One relay event rendered; True once nothing more is to be sent."""
    if payload.strip() == b"[DONE]":
        return True, renderer.done()
    try:
        chunk = loads(payload)
    except ValueError:
        return False, b""
    if not isinstance(chunk, dict):
        return False, b""
    error = chunk.get("error")
    if error is not None:
        return True, renderer.failed(error if isinstance(error, dict) else _interrupted())
    return False, renderer.chunk(chunk)


def _interrupted() -> JSON:
    error: JSON = UpstreamFailed(
        "The answer's stream ended before it was complete.", code="upstream_stream_interrupted"
    ).body()["error"]
    return error
