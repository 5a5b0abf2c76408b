"""The contract between the gateway and upstream LLM vendors.

Every vendor adapter speaks OpenAI wire format on the gateway side, whatever the
upstream speaks. The interface is deliberately small:

    class Provider(Protocol):
        name: str
        async def chat(body, *, model, credential, timeout) -> UpstreamResponse
        async def chat_stream(body, *, model, credential, timeout) -> ChatStream
        async def embeddings(body, *, model, credential, timeout) -> UpstreamResponse

``body`` is the client's OpenAI request JSON; it is never mutated. ``model`` is the
upstream model id that replaces ``body["model"]``.

Timeouts: for ``chat``/``embeddings`` ``timeout`` is a deadline for the whole call.
For ``chat_stream`` it bounds the time until the first chunk is ready, and afterwards
the longest silence allowed between two upstream reads.

Errors: every failure surfaces as ``UpstreamError`` (``UpstreamTimeout`` for
timeouts, ``UpstreamRefused`` when the egress policy refused the address).
Messages are bounded summaries, never the upstream's body as it came.
``retryable`` is True for 408/429/5xx, timeouts and connection failures: those are
the cases where trying again or falling back to another upstream can help.
The gateway's mapping once fallbacks are exhausted (proxy/execute.py): ``UpstreamTimeout``
-> 504, an upstream 4xx (429 included) -> that status with the upstream's ``code``,
``kind``, ``param`` and ``message`` (and ``retry_after``), anything else -> 502.
``status`` is None when no HTTP answer was received.

Streaming: ``await provider.chat_stream(...)`` returns a ``ChatStream`` only after the
upstream accepted the request *and* produced its first chunk, so a refusal (HTTP
error, timeout, an error event as first event) raises before anything reaches the
client and the gateway can still fall back or answer 502/504. Then::

    async with stream:                # always releases the upstream connection
        async for chunk in stream:    # OpenAI SSE bytes, ends with b"data: [DONE]\\n\\n"
            ...
    log(stream.usage)                 # Usage | None, known once the stream is drained

A failure after the first chunk raises ``UpstreamError`` from the iteration; the
gateway can only end its own response at that point (with an in-band error event).

An answer that is not an event stream is a failure like any other: a JSON completion
(the upstream ignored ``stream``) is converted to chunks, and anything else (an HTML
page, garbage, an empty body) raises ``UpstreamError`` before the first chunk if it
starts that way, or from the iteration if a stream turns into it (``_stream``).
"""

# The contract passes `timeout` explicitly: adapters apply it per HTTP phase and
# as an overall deadline, which an outer asyncio.timeout alone cannot express.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    @classmethod
    def from_openai(cls, raw: object) -> Usage | None:
        """Read an OpenAI ``usage`` object; None when absent or malformed."""
        if not isinstance(raw, dict):
            return None
        try:
            prompt = int(raw.get("prompt_tokens") or 0)
            completion = int(raw.get("completion_tokens") or 0)
            total = int(raw.get("total_tokens") or prompt + completion)
        except (TypeError, ValueError):
            return None
        return cls(prompt, completion, total)

    def to_openai(self) -> JSON:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, slots=True)
class UpstreamCredential:
    vendor: str
    # Kept out of repr so a logged credential or traceback never shows the key.
    api_key: str = field(repr=False)
    base_url: str | None = None


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    body: JSON
    usage: Usage | None
    # The upstream's own bytes when ``body`` is exactly what it sent (strict JSON, not
    # translated): the gateway relays them instead of serialising ``body`` again.
    raw: bytes | None = None


class UpstreamError(Exception):
    """The upstream answered with an error, or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool | None = None,
        code: str | None = None,
        kind: str | None = None,
        param: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = is_retryable_status(status) if retryable is None else retryable
        # What the upstream said about its refusal, already reduced to short identifiers
        # (`_http.error_from_response`): relayed to the caller with a 4xx.
        self.code = code
        self.kind = kind
        self.param = param
        self.retry_after = retry_after  # the upstream's Retry-After, for a relayed 429

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, "
            f"retryable={self.retryable!r}, message={self.message!r})"
        )


class UpstreamTimeout(UpstreamError):
    def __init__(self, message: str = "upstream timed out") -> None:
        super().__init__(message, status=None, retryable=True)


class UpstreamRefused(UpstreamError):
    """The egress policy refused the upstream's address; nothing was sent to it."""

    def __init__(self, message: str = "the egress policy refused the upstream's address") -> None:
        super().__init__(message, status=None, retryable=False)


def unsupported(message: str) -> UpstreamError:
    """A request an adapter cannot translate for its vendor: the caller's 400, and no other
    target would be tried for it."""
    return UpstreamError(message, status=400, retryable=False)


def inline_image(part: JSON, vendor: str) -> tuple[str, str]:
    """An OpenAI `image_url` part given as a `data:` URL: (mime type, base64 data)."""
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url:
        raise unsupported(f"{vendor} reads images only as data: URLs (base64)")
    mime_type, data = url[5:].split(";base64,", 1)
    return mime_type, data


def is_retryable_status(status: int | None) -> bool:
    # None means no HTTP answer at all (connection refused/reset): worth another try.
    return status is None or status in (408, 429) or status >= 500


class Closing:
    """``async with thing:`` closes the thing on the way out (``await thing.aclose()``)."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class ChatStream(Closing):
    """An opened upstream stream of OpenAI SSE bytes; see the module docstring.

    Providers build it from a factory producing the chunk generator; the generator
    receives the stream so it can fill in ``usage`` as the final chunk goes by.
    """

    def __init__(self, chunks: Callable[[ChatStream], AsyncGenerator[bytes, None]]) -> None:
        self.usage: Usage | None = None
        self._chunks = chunks(self)
        self._first: bytes | None = None

    @classmethod
    async def open(
        cls, chunks: Callable[[ChatStream], AsyncGenerator[bytes, None]], timeout: float
    ) -> ChatStream:
        """Start the stream and wait (at most ``timeout``) for its first chunk.

        Pulling the first chunk here is what lets refusals surface before the gateway
        commits to a 200 response.
        """
        stream = cls(chunks)
        try:
            async with asyncio.timeout(timeout):
                stream._first = await anext(stream._chunks)
        except TimeoutError:
            await stream.aclose()
            raise UpstreamTimeout(f"upstream sent nothing within {timeout:g}s") from None
        except StopAsyncIteration:
            raise UpstreamError("upstream closed the stream without sending data") from None
        return stream

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> bytes:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return await anext(self._chunks)

    async def aclose(self) -> None:
        self._first = None
        await self._chunks.aclose()


@runtime_checkable
class Provider(Protocol):
    name: str

    async def chat(
        self, body: JSON, *, model: str, credential: UpstreamCredential, timeout: float
    ) -> UpstreamResponse: ...

    async def chat_stream(
        self, body: JSON, *, model: str, credential: UpstreamCredential, timeout: float
    ) -> ChatStream: ...

    async def embeddings(
        self, body: JSON, *, model: str, credential: UpstreamCredential, timeout: float
    ) -> UpstreamResponse: ...
