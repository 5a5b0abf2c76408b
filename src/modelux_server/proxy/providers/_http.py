"""HTTP plumbing shared by the adapters: the pooled client, error mapping, SSE framing.

The client is aiohttp rather than httpx: on the gateway's hot path httpx/httpcore cost
about as much CPU as everything else together (anyio cancel scopes per I/O call, h11 in
pure Python, pool bookkeeping), while aiohttp parses responses in C and needs no extra
task or scope per request. Every aiohttp error is converted to ``UpstreamError`` here;
no other module imports aiohttp.

This is also where the egress policy (kit/egress.py) meets the network: the connector's
resolver drops every address the policy refuses, so the check is made on the address
actually connected to, and IP literals (which aiohttp never resolves) are checked before
each request. Redirects are never followed. Answers are read up to a size cap, and an
upstream's error body is reduced to a short summary before anyone sees it.
"""

# The contract passes `timeout` explicitly: adapters apply it per HTTP phase and
# as an overall deadline, which an outer asyncio.timeout alone cannot express.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from modelux_server.kit.egress import EgressPolicy, VerdictCache, literal_address, url_host_port

from ..codec import dumps, loads, parse
from .base import JSON, UpstreamError, UpstreamRefused, UpstreamTimeout

USER_AGENT = "modelux-server"
_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_BYTES = 10_485_760
DEFAULT_STREAM_MAX_BYTES = 67_108_864
# An error body is read only this far: nothing but its message is kept.
_MAX_ERROR_BYTES = 65_536
_MAX_MESSAGE = 200

log = logging.getLogger("modelux.upstream")


class EgressRefused(OSError):
    """Raised by the resolver: the policy admits none of the host's addresses."""


class EgressResolver(AbstractResolver):
    """Resolves through ``inner`` and keeps only the addresses the egress policy admits.

    The connection is made to one of the addresses returned here, so a name whose
    answer changes between the save-time check and the connection (DNS rebinding)
    is still judged on the address used.
    """

    def __init__(self, policy: EgressPolicy, inner: AbstractResolver) -> None:
        self._policy = policy
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self._policy.admits_name(host):
            return results
        admitted = [r for r in results if self._policy.admits_address(r["host"])]
        if not admitted:
            raise EgressRefused(f"no address of {host} is admitted by the egress policy")
        return admitted

    async def close(self) -> None:
        await self._inner.close()


class HttpClient:
    """The one pooled client all adapters share: up to ``max_connections`` connections.

    Keep-alive covers the whole budget, since under load every request would otherwise
    pay a fresh TCP+TLS handshake to the same few hosts. The aiohttp session is opened
    on first use, because it binds to the running event loop.
    """

    def __init__(
        self,
        *,
        max_connections: int = 512,
        keepalive_expiry: float = 30.0,
        egress: EgressPolicy | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        stream_max_bytes: int = DEFAULT_STREAM_MAX_BYTES,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        # no policy given: every non-public destination is refused
        self.egress = egress or EgressPolicy()
        self.max_bytes = max_bytes
        self.stream_max_bytes = stream_max_bytes
        self.inner_resolver = resolver  # where names are looked up; the system's when None
        self._resolver: EgressResolver | None = None
        self._literals = VerdictCache()  # a literal's verdict only changes with the policy
        self._session: aiohttp.ClientSession | None = None
        self.in_flight = 0  # requests sent whose response is not released yet

    @property
    def session(self) -> aiohttp.ClientSession:
        return self._session or self._open()

    def _open(self) -> aiohttp.ClientSession:
        self._resolver = EgressResolver(self.egress, self.inner_resolver or DefaultResolver())
        connector = aiohttp.TCPConnector(
            limit=self.max_connections,
            limit_per_host=0,
            keepalive_timeout=self.keepalive_expiry,
            resolver=self._resolver,
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

    def guard(self, url: str) -> None:
        """Refuse a URL whose host is an IP literal the policy does not admit.

        aiohttp connects to a literal without asking the resolver, so this is the
        connect-time check for literals; the answer per URL is kept. A URL whose
        host is ambiguous (user info, no host) is refused too.
        """
        admitted = self._literals.get(url)
        if admitted is None:
            target = url_host_port(url)
            literal = literal_address(target[0]) if target else None
            admitted = target is not None and (literal is None or self.egress.admits_address(literal))
            self._literals.put(url, admitted)
        if not admitted:
            log.warning("upstream refused by the egress policy: %s", (url_host_port(url) or ("?",))[0])
            raise UpstreamRefused()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._resolver is not None:
            await self._resolver.close()
            self._resolver = None


def make_http_client(
    *, max_connections: int = 512, keepalive_expiry: float = 30.0, **options: Any
) -> HttpClient:
    return HttpClient(max_connections=max_connections, keepalive_expiry=keepalive_expiry, **options)


def summary(text: object, limit: int = _MAX_MESSAGE) -> str:
    """Text an upstream chose as one printable line of at most ``limit`` characters.

    Control, formatting (bidi, zero-width) and line-separator characters become
    spaces: they could forge lines in a log or reorder text on a page.
    """
    if not isinstance(text, str):
        return ""
    printable = "".join(ch if ch.isprintable() else " " for ch in text[: limit * 4])
    line = " ".join(printable.split())
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"


def transport_error(exc: BaseException, *, quiet: bool = False) -> UpstreamError:
    if isinstance(exc, TimeoutError):  # aiohttp's connect/read timeouts subclass it
        return UpstreamTimeout(f"upstream timed out ({type(exc).__name__})")
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, EgressRefused):
        log.warning("upstream refused by the egress policy: %s", exc.host)
        return UpstreamRefused()
    # The OS error says which address and port refused or did not answer; told to a
    # tenant, that maps the operator's network. It goes to the operator's log only.
    if not quiet:
        log.warning("upstream connection failed: %s: %s", type(exc).__name__, exc)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError("upstream unreachable", status=None, retryable=True)
    return UpstreamError("upstream connection failed", status=None, retryable=True)


_IDENTIFIER = re.compile(r"[A-Za-z0-9_.:-]{1,60}")


def _error_fields(content: bytes) -> dict[str, Any]:
    """The upstream's JSON error object (OpenAI, Anthropic and Google shapes), or {}."""
    try:
        data: Any = loads(content)
    except ValueError:
        return {}
    if isinstance(data, list) and data:  # Google wraps errors in a list
        data = data[0]
    if not isinstance(data, dict):
        return {}
    err = data.get("error", data)
    if isinstance(err, str):
        return {"message": err}
    return err if isinstance(err, dict) else {}


def _identifier(value: object) -> str | None:
    """A code, type or param the upstream named, if it is a short plain identifier."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and _IDENTIFIER.fullmatch(value) else None


def error_from_response(
    status: int, content: bytes, headers: Mapping[str, str] | None = None
) -> UpstreamError:
    """An error carrying a bounded summary of the upstream's JSON error.

    The body itself is never passed on: an HTML error page, or the answer of something
    that is not an LLM API, may hold anything. Only the message of a JSON error (OpenAI,
    Anthropic and Google shapes) is kept, as one short printable line, with its code,
    type and param when they are short identifiers, and a numeric Retry-After.
    """
    fields = _error_fields(content)
    message = fields.get("message") or fields.get("detail")
    retry_after = (headers or {}).get("retry-after")
    return UpstreamError(
        summary(message) or f"upstream returned HTTP {status}",
        status=status,
        # Google names its code by status (`"status": "INVALID_ARGUMENT"`, `"code": 400`)
        code=_identifier(fields.get("code") if isinstance(fields.get("code"), str) else fields.get("status")),
        kind=_identifier(fields.get("type")),
        param=_identifier(fields.get("param")),
        retry_after=retry_after if retry_after is not None and retry_after.isdigit() else None,
    )


def _too_large(limit: int, what: str = "answer") -> UpstreamError:
    # Not retried on another target: an answer this large is a fault, not bad luck.
    return UpstreamError(f"upstream {what} exceeds {limit} bytes", status=None, retryable=False)


async def _read_capped(resp: aiohttp.ClientResponse, limit: int, *, truncate: bool = False) -> bytes:
    """The body, at most ``limit`` bytes: past it, cut (``truncate``) or refuse.

    Leaving a body unread closes the connection rather than pooling it, so stopping
    early is safe.
    """
    length = resp.content_length
    plain = resp.headers.get("content-encoding", "identity") == "identity"
    if length is not None and plain and length <= limit:
        return await resp.read()  # the common case: the whole body is announced and small
    if length is not None and plain and not truncate:
        raise _too_large(limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > limit:
            if truncate:
                parts.append(chunk[: limit - (size - len(chunk))])
                break
            raise _too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


class _CappedStream:
    """A stream's chunks, failing once their total passes ``limit``."""

    __slots__ = ("_chunks", "_left", "_limit")

    def __init__(self, chunks: AsyncIterator[bytes], limit: int) -> None:
        self._chunks = chunks
        self._left = self._limit = limit

    def __aiter__(self) -> _CappedStream:
        return self

    async def __anext__(self) -> bytes:
        chunk = await anext(self._chunks)
        self._left -= len(chunk)
        if self._left < 0:
            raise _too_large(self._limit, "stream")
        return chunk


@lru_cache(maxsize=64)
def _stream_timeout(timeout: float) -> aiohttp.ClientTimeout:
    # sock_read bounds the silence between two reads of a long-lived stream.
    return aiohttp.ClientTimeout(total=None, connect=min(timeout, _CONNECT_TIMEOUT), sock_read=timeout)


def _body(payload: JSON | bytes) -> bytes:
    # bytes: already serialised by an adapter that signs the exact body it sends (Bedrock)
    return payload if isinstance(payload, bytes) else dumps(payload)


def _json_headers(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "content-type": "application/json"}


async def post_json(
    client: HttpClient, url: str, *, headers: dict[str, str], payload: JSON | bytes, timeout: float
) -> tuple[int, JSON, bytes | None]:
    """POST and return the status, the decoded JSON object and its raw bytes.

    The raw bytes are None unless they are strict JSON that can be relayed as they are.

    Every failure is mapped to UpstreamError; ``timeout`` is a deadline for the whole call.
    """
    client.guard(url)
    data = _body(payload)
    client.in_flight += 1
    try:
        async with asyncio.timeout(timeout):
            async with client.session.post(
                url, data=data, headers=_json_headers(headers), allow_redirects=False
            ) as resp:
                status = resp.status
                if status >= 400:
                    error = await _read_capped(resp, _MAX_ERROR_BYTES, truncate=True)
                    raise error_from_response(status, error, resp.headers)
                content = await _read_capped(resp, client.max_bytes)
    except aiohttp.ClientError as exc:  # before TimeoutError: aiohttp's own timeouts are both
        raise transport_error(exc) from exc
    except TimeoutError:
        raise UpstreamTimeout(f"upstream did not answer within {timeout:g}s") from None
    finally:
        client.in_flight -= 1
    try:
        body, strict = parse(content)
    except ValueError:
        body, strict = None, False
    if not isinstance(body, dict):
        raise UpstreamError("upstream returned a non-JSON-object body", status=status, retryable=True)
    return status, body, content if strict else None


@asynccontextmanager
async def stream_post(
    client: HttpClient, url: str, *, headers: dict[str, str], payload: JSON | bytes, timeout: float
) -> AsyncIterator[AsyncIterator[bytes]]:
    """POST with a streamed answer; yields the body's byte chunks once the status is OK.

    Transport failures while reading are mapped to UpstreamError as well. Leaving the
    block before the body ended closes the connection instead of returning it to the
    pool, where the rest of the body would corrupt the next request.
    """
    client.guard(url)
    client.in_flight += 1
    reading = False
    try:
        async with client.session.post(
            url,
            data=_body(payload),
            headers=_json_headers(headers),
            allow_redirects=False,
            timeout=_stream_timeout(timeout),
        ) as resp:
            if resp.status >= 400:
                error = await _read_capped(resp, _MAX_ERROR_BYTES, truncate=True)
                raise error_from_response(resp.status, error, resp.headers)
            reading = True
            yield _CappedStream(resp.content.iter_any(), client.stream_max_bytes)
    except (aiohttp.ClientError, TimeoutError) as exc:
        # A body that breaks off is logged once by the gateway, with the request it broke
        # and this error as the cause.
        raise transport_error(exc, quiet=reading) from exc
    finally:
        client.in_flight -= 1


def sse_event(payload: JSON) -> bytes:
    return b"data: " + dumps(payload) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"
