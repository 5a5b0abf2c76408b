"""The backend behind `modelux mcp`: forward each tool call to a server's management API.

The stdio bridge runs next to a desktop assistant, usually far from the
server and its database, so it holds no service code: the server answers,
with its data and its errors, and the bridge passes both on unchanged.
"""

from __future__ import annotations

from typing import Any

import httpx
from mcp.server.mcpserver import Context

from modelux_server.mcp.operations import Operation
from modelux_server.mcp.tools import ToolFailure

MANAGE = "/manage/v1"


class RemoteBackend:
    def __init__(self, url: str, key: str, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.client = httpx.AsyncClient(
            base_url=self.url + MANAGE,
            headers={"Authorization": f"Bearer {key}", "User-Agent": "modelux-mcp"},
            timeout=httpx.Timeout(30.0, connect=10.0),
            transport=transport,
        )

    async def call(self, op: Operation, args: dict[str, Any], ctx: Context) -> dict[str, Any]:
        path, rest = op.target(args)
        try:
            if op.method == "GET":
                response = await self.client.get(path, params=rest)
            elif op.method == "DELETE":
                response = await self.client.request(op.method, path)
            else:
                response = await self.client.request(op.method, path, json=rest)
        except httpx.HTTPError as exc:
            raise ToolFailure(503, unreachable(self.url, exc)) from exc
        body = _json(response)
        if response.is_error:
            raise ToolFailure(response.status_code, body if "error" in body else _opaque(response))
        return body

    async def aclose(self) -> None:
        await self.client.aclose()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _opaque(response: httpx.Response) -> dict[str, Any]:
    # a proxy in front of the server answered, not modelux: keep the status, say so
    message = f"The server answered HTTP {response.status_code} without a modelux error body."
    return {"error": {"type": "api_error", "code": "unexpected_response", "message": message}}


def unreachable(url: str, exc: Exception) -> dict[str, Any]:
    message = f"Could not reach the modelux server at {url}: {type(exc).__name__}: {exc}"
    return {"error": {"type": "api_error", "code": "server_unreachable", "message": message}}
