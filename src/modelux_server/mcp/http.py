"""`/mcp` on the app's port: management-key auth in front of streamable HTTP.

The SDK's session manager runs stateless and answers JSON: every POST
carries its own credential and needs no server-side session, so several
`modelux serve` processes behind one load balancer serve MCP without sticky
sessions, as they serve the management API.

Its DNS-rebinding protection (a Host/Origin allow-list) stays off: it guards
servers that trust whoever can reach them, while `/mcp` needs a management
key that a rebinding page does not have, and the allow-list would refuse the
operator's real host names.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from modelux_server.auth.management import authenticate_management_key
from modelux_server.errors import ModeluxError, Unauthorized
from modelux_server.kit.http_guards import send_error
from modelux_server.management.rate_limit import throttle_management_key
from modelux_server.mcp.local import LocalBackend
from modelux_server.mcp.server import build_server
from modelux_server.ratelimit.headers import rate_headers
from modelux_server.services import Services

PATH = "/mcp"


class McpEndpoint:
    """ASGI app: refuse a missing or bad key with the contract's 401, else hand over to the SDK.

    Tools authenticate again in their own transaction (see local.py); this
    check exists so a bad key gets an HTTP 401 a client can act on, not a
    JSON-RPC session that fails on every call. Each POST (one JSON-RPC
    message) also counts against the management key's per-minute limit, as
    a management API request does, and gets its 429 over it.
    """

    def __init__(self, rt: Services, sessions: StreamableHTTPSessionManager) -> None:
        self.rt = rt
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            # Stateless mode keeps no session, so there is no stream for GET to
            # resume and nothing for DELETE to end; the spec lets a server answer
            # 405 here, where the SDK would hold a GET stream open indefinitely.
            await send_error(
                send,
                405,
                "method_not_allowed",
                "/mcp runs stateless: send each JSON-RPC message with POST.",
                headers=[(b"allow", b"POST")],
            )
            return
        authorization = Headers(scope=scope).get("authorization")
        try:
            # a plain read: on SQLite it must not queue for the write lock
            async with self.rt.db.read_sessionmaker() as session:
                principal = await authenticate_management_key(session, authorization, source="mcp")
                verdict = await throttle_management_key(session, self.rt, principal)
        except ModeluxError as exc:
            headers = dict(exc.headers)
            if isinstance(exc, Unauthorized):
                headers["WWW-Authenticate"] = "Bearer"
            response = JSONResponse(exc.body(), status_code=exc.status, headers=headers)
            await response(scope, receive, send)
            return
        if verdict is not None:
            send = _with_headers(send, rate_headers(verdict))
        await self.sessions.handle_request(scope, receive, send)


def _with_headers(send: Send, headers: dict[str, str]) -> Send:
    """`send`, adding `headers` to the response the SDK starts."""
    extra = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending


def mount(rt: Services, app: FastAPI) -> None:
    """Add `/mcp` to the app; its session manager runs in `lifespan` once the app starts."""
    server = build_server(LocalBackend(rt))
    # Building the SDK's own app is its public way to create the session
    # manager; we route to the manager ourselves, behind the key check.
    server.streamable_http_app(
        streamable_http_path=PATH,
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    sessions = server.session_manager
    rt.mcp_sessions = sessions
    # The SDK logs each stateless request's transport teardown at INFO.
    logging.getLogger("mcp.server.streamable_http").setLevel(logging.WARNING)
    # A Route whose endpoint is an ASGI object (not a function) accepts
    # every method, and answers `/mcp` itself rather than redirecting to
    # `/mcp/` as a Mount would.
    app.router.routes.append(Route(PATH, endpoint=McpEndpoint(rt, sessions), include_in_schema=False))


@asynccontextmanager
async def lifespan(rt: Services) -> AsyncIterator[None]:
    """Run the session manager's task group for as long as the app serves.

    The task group lives in a task of its own: anyio requires a task group to
    be left by the task that entered it, and whoever runs the app's lifespan
    (uvicorn, a test fixture) may start and stop it from different tasks.
    """
    sessions = rt.mcp_sessions
    if sessions is None:  # the app was assembled without the MCP mount
        yield
        return
    running: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def serve() -> None:
        async with sessions.run():
            running.set_result(None)
            await stop.wait()

    task = asyncio.create_task(serve(), name="mcp-sessions")
    await asyncio.wait({task, running}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # it failed to start: raise why
    try:
        yield
    finally:
        stop.set()
        await task
