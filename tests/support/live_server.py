"""The real app on a real loopback port, for tests that need outside callers.

Stripe's emulator delivers webhooks by HTTP, a browser needs a URL, and MCP
clients speak streamable HTTP: all of them need the app listening on a socket.

    server = LiveServer(settings, clock=clock).start()
    httpx.get(server.url + "/healthz")
    org = server.call(make_org(server.runtime))   # runs on the server's loop
    org = server.call(lambda rt: make_org(rt))    # the same, given the runtime
    server.stop()

The app runs with its lifespan (start-up hooks included) on its own event
loop in a background thread. Its database pool belongs to that loop, so code
that touches `server.runtime` must run there: use `call` (from sync code) or
`acall` (from an async test), never `await` on the runtime directly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import httpx
import uvicorn
from fastapi import FastAPI

from modelux_server.app import create_app
from modelux_server.config import Settings
from modelux_server.kit.clock import Clock
from modelux_server.services import Services

T = TypeVar("T")
Work = Awaitable[T] | Callable[[Services], Awaitable[T]]


class LiveServer:
    def __init__(self, settings: Settings, clock: Clock | None = None, *, app: FastAPI | None = None) -> None:
        self.app = app or create_app(settings, clock=clock)
        self.runtime: Services = self.app.state.services
        # binding first gives the port before uvicorn starts, with no race for it
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, lifespan="on", log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"live-server-{self.port}", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._server.serve(sockets=[self._sock]))
        except BaseException as exc:  # surfaced by start()
            self._error = exc
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def start(self, timeout: float = 20.0) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while True:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"live server failed to start: {self._error!r}")
            if self._server.started:
                try:
                    if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError("live server did not answer /healthz in time")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._sock.close()

    def call(self, work: Work[T], timeout: float = 30.0) -> T:
        """Run a coroutine (or `work(runtime)`) on the server's loop; return its result."""
        return self._submit(work).result(timeout)

    async def acall(self, work: Work[T]) -> T:
        """`call` for async tests: awaits without blocking the test's own loop."""
        return await asyncio.wrap_future(self._submit(work))

    def _submit(self, work: Work[T]) -> concurrent.futures.Future[T]:
        awaitable = work(self.runtime) if callable(work) else work
        return asyncio.run_coroutine_threadsafe(_as_coroutine(awaitable), self._loop)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


@contextmanager
def live_server(settings: Settings, clock: Clock | None = None) -> Iterator[LiveServer]:
    server = LiveServer(settings, clock).start()
    try:
        yield server
    finally:
        server.stop()
