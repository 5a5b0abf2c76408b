"""HTTP plumbing shared by the adapters: the pooled client, error mapping, SSE framing.

The client is aiohttp rather than httpx: on the gateway's hot path httpx/httpcore cost
about as much CPU as everything else together (anyio cancel scopes per I/O call, h11 in
pure Python, pool bookkeeping), while aiohttp parses responses in C and needs no extra
task or scope per request. Every aiohttp error is converted to ``UpstreamError`` here;
no other module imports aiohttp.
"""

# The contract passes `timeout` explicitly: adapters apply it per HTTP phase and
# as an overall deadline, which an outer asyncio.timeout alone cannot express.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

import aiohttp

from ..codec import dumps, loads, parse
from .base import JSON, UpstreamError, UpstreamTimeout

USER_AGENT = "modelux-server"
_MAX_ERROR_TEXT = 500
_CONNECT_TIMEOUT = 10.0


class HttpClient:
    """The one pooled client all adapters share: up to ``max_connections`` connections.

    Keep-alive covers the whole budget, since under load every request would otherwise
    pay a fresh TCP+TLS handshake to the same few hosts. The aiohttp session is opened
    on first use, because it binds to the running event loop.
    """

    def __init__(self, *, max_connections: int = 512, keepalive_expiry: float = 30.0) -> None:
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None
        self.in_flight = 0  # requests sent whose response is not released yet

    @property
    def session(self) -> aiohttp.ClientSession:
        return self._session or self._open()

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.max_connections, limit_per_host=0, keepalive_timeout=self.keepalive_expiry
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            # The overall deadline is an asyncio.timeout per call; aiohttp only bounds connecting.
            timeout=aiohttp.ClientTimeout(total=None, connect=_CONNECT_TIMEOUT),
            headers={"user-agent": USER_AGENT},
            # One session serves every organization: an upstream cookie set for one
            # tenant must never be sent on behalf of another.
            cookie_jar=aiohttp.DummyCookieJar(),
            raise_for_status=False,
        )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def make_http_client(*, max_connections: int = 512, keepalive_expiry: float = 30.0) -> HttpClient:
    return HttpClient(max_connections=max_connections, keepalive_expiry=keepalive_expiry)


def transport_error(exc: BaseException) -> UpstreamError:
    if isinstance(exc, TimeoutError):  # aiohttp's connect/read timeouts subclass it
        return UpstreamTimeout(f"upstream timed out ({type(exc).__name__})")
    # aiohttp's messages name the host at most, never request headers.
    detail = str(exc) or type(exc).__name__
    return UpstreamError(f"upstream unreachable: {detail}", status=None, retryable=True)


def error_from_response(status: int, content: bytes) -> UpstreamError:
    """Build an error carrying the upstream's own message (OpenAI and Anthropic shapes)."""
    message: str | None = None
    try:
        data: Any = loads(content)
    except ValueError:
        data = None
    if isinstance(data, list) and data:  # Google wraps errors in a list
        data = data[0]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            message = err.get("message") or err.get("detail")
        elif isinstance(err, str):
            message = err
    if not isinstance(message, str) or not message:
        message = content[:_MAX_ERROR_TEXT].decode("utf-8", "replace").strip()
    return UpstreamError(message or f"upstream returned HTTP {status}", status=status)


@lru_cache(maxsize=64)
def _stream_timeout(timeout: float) -> aiohttp.ClientTimeout:
    # sock_read bounds the silence between two reads of a long-lived stream.
    return aiohttp.ClientTimeout(total=None, connect=min(timeout, _CONNECT_TIMEOUT), sock_read=timeout)


def _json_headers(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "content-type": "application/json"}


async def post_json(
    client: HttpClient, url: str, *, headers: dict[str, str], payload: JSON, timeout: float
) -> tuple[int, JSON, bytes | None]:
    """POST and return the status, the decoded JSON object and its raw bytes.

    The raw bytes are None unless they are strict JSON that can be relayed as they are.

    Every failure is mapped to UpstreamError; ``timeout`` is a deadline for the whole call.
    """
    data = dumps(payload)
    client.in_flight += 1
    try:
        async with asyncio.timeout(timeout):
            async with client.session.post(
                url, data=data, headers=_json_headers(headers), allow_redirects=False
            ) as resp:
                status = resp.status
                content = await resp.read()
    except aiohttp.ClientError as exc:  # before TimeoutError: aiohttp's own timeouts are both
        raise transport_error(exc) from exc
    except TimeoutError:
        raise UpstreamTimeout(f"upstream did not answer within {timeout:g}s") from None
    finally:
        client.in_flight -= 1
    if status >= 400:
        raise error_from_response(status, content)
    try:
        body, strict = parse(content)
    except ValueError:
        body, strict = None, False
    if not isinstance(body, dict):
        raise UpstreamError("upstream returned a non-JSON-object body", status=status, retryable=True)
    return status, body, content if strict else None


@asynccontextmanager
async def stream_post(
    client: HttpClient, url: str, *, headers: dict[str, str], payload: JSON, timeout: float
) -> AsyncIterator[AsyncIterator[bytes]]:
    """POST with a streamed answer; yields the body's byte chunks once the status is OK.

    Transport failures while reading are mapped to UpstreamError as well. Leaving the
    block before the body ended closes the connection instead of returning it to the
    pool, where the rest of the body would corrupt the next request.
    """
    client.in_flight += 1
    try:
        async with client.session.post(
            url,
            data=dumps(payload),
            headers=_json_headers(headers),
            allow_redirects=False,
            timeout=_stream_timeout(timeout),
        ) as resp:
            if resp.status >= 400:
                raise error_from_response(resp.status, await resp.read())
            yield resp.content.iter_any()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise transport_error(exc) from exc
    finally:
        client.in_flight -= 1


class SSEBuffer:
    """Reassembles SSE events from arbitrarily split network chunks."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        """Return the events completed by ``data``, without their blank-line terminator."""
        buf = self._buf + data
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        *events, self._buf = buf.split(b"\n\n")
        return [e for e in events if e.strip()]


def sse_fields(event: bytes) -> tuple[str | None, bytes]:
    """Split one SSE event into its ``event:`` name and joined ``data:`` payload."""
    name: str | None = None
    data: list[bytes] = []
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[6:] if line[5:6] == b" " else line[5:])
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode("utf-8", "replace")
    return name, b"\n".join(data)


def sse_event(payload: JSON) -> bytes:
    return b"data: " + dumps(payload) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"
