"""An httpx transport made of many small connection pools.

httpcore's pool (httpx 0.28 / httpcore 1.0) re-scans every connection, and for idle
ones every connection again, each time a request enters or leaves it. With a few hundred
connections that O(n^2) bookkeeping costs more than the requests themselves: measured
against the fake upstream, one 512-connection pool fell from ~1,700 to ~30 requests/s
at 256 concurrent requests (see encode/httpx#3215). Splitting the same connection budget
into pools of ~8 keeps the bookkeeping small. Each request goes to the pool with the
fewest requests in flight, so a pool full of long streams does not make new requests
queue while other pools have room; ties go to the lowest index, which at low load keeps
reusing the same warm keep-alive connections.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import cast

import httpx


class _ReleasingStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._release is not None:
                self._release()
                self._release = None


class ShardedTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int, per_shard: int, keepalive_expiry: float) -> None:
        shards = max(1, -(-max_connections // per_shard))
        limits = httpx.Limits(
            max_connections=per_shard,
            max_keepalive_connections=per_shard,
            keepalive_expiry=keepalive_expiry,
        )
        # Loading the CA bundle takes ~15 ms; load it once, not once per pool.
        ssl_context = httpx.create_ssl_context()
        self._pools = [httpx.AsyncHTTPTransport(limits=limits, verify=ssl_context) for _ in range(shards)]
        self._in_flight = [0] * shards

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet closed, across all pools."""
        return sum(self._in_flight)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = self._in_flight.index(min(self._in_flight))
        self._in_flight[index] += 1

        def release() -> None:
            self._in_flight[index] -= 1

        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            release()
            raise
        response.stream = _ReleasingStream(cast(httpx.AsyncByteStream, response.stream), release)
        return response

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()
