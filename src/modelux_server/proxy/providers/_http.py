"""HTTP plumbing shared by the adapters: the pooled client, error mapping, SSE framing."""

# The contract passes `timeout` explicitly: adapters apply it per HTTP phase (httpx) and
# as an overall deadline, which an outer asyncio.timeout alone cannot express.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from ._transport import ShardedTransport
from .base import JSON, UpstreamError, UpstreamTimeout

USER_AGENT = "modelux-server"
_MAX_ERROR_TEXT = 500


def make_http_client(
    *, max_connections: int = 512, per_shard: int = 8, keepalive_expiry: float = 30.0
) -> httpx.AsyncClient:
    """The one client all adapters share: up to ``max_connections`` pooled connections.

    Keep-alive covers the whole budget, since under load every request would otherwise
    pay a fresh TCP+TLS handshake to the same few hosts.
    """
    transport = ShardedTransport(
        max_connections=max_connections, per_shard=per_shard, keepalive_expiry=keepalive_expiry
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(60.0, connect=10.0),
        headers={"user-agent": USER_AGENT},
        follow_redirects=False,
    )


def transport_error(exc: httpx.HTTPError) -> UpstreamError:
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"upstream timed out ({type(exc).__name__})")
    # str(exc) from httpx names the URL at most, never request headers.
    detail = str(exc) or type(exc).__name__
    return UpstreamError(f"upstream unreachable: {detail}", status=None, retryable=True)


def error_from_response(status: int, content: bytes) -> UpstreamError:
    """Build an error carrying the upstream's own message (OpenAI and Anthropic shapes)."""
    message: str | None = None
    try:
        data: Any = json.loads(content)
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


def _request_timeout(timeout: float) -> httpx.Timeout:
    return httpx.Timeout(timeout, connect=min(timeout, 10.0))


async def post_json(
    client: httpx.AsyncClient, url: str, *, headers: dict[str, str], payload: JSON, timeout: float
) -> tuple[int, JSON]:
    """POST and return the decoded JSON answer, mapping every failure to UpstreamError."""
    try:
        # httpx timeouts are per phase; the outer deadline caps the whole call.
        async with asyncio.timeout(timeout):
            resp = await client.post(url, json=payload, headers=headers, timeout=_request_timeout(timeout))
    except TimeoutError:
        raise UpstreamTimeout(f"upstream did not answer within {timeout:g}s") from None
    except httpx.HTTPError as exc:
        raise transport_error(exc) from exc
    if resp.status_code >= 400:
        raise error_from_response(resp.status_code, resp.content)
    try:
        body = json.loads(resp.content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise UpstreamError(
            "upstream returned a non-JSON-object body", status=resp.status_code, retryable=True
        )
    return resp.status_code, body


@asynccontextmanager
async def stream_post(
    client: httpx.AsyncClient, url: str, *, headers: dict[str, str], payload: JSON, timeout: float
) -> AsyncIterator[AsyncIterator[bytes]]:
    """POST with a streamed answer; yields the body's byte chunks once the status is OK.

    Transport failures while reading are mapped to UpstreamError as well.
    """
    try:
        async with client.stream(
            "POST", url, json=payload, headers=headers, timeout=_request_timeout(timeout)
        ) as resp:
            if resp.status_code >= 400:
                raise error_from_response(resp.status_code, await resp.aread())
            yield resp.aiter_bytes()
    except httpx.HTTPError as exc:
        raise transport_error(exc) from exc


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


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
