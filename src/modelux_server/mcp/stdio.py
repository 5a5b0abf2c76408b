"""`modelux mcp`: the same tools over stdio, for desktop assistants.

stdout carries the protocol, so nothing else may write to it; the SDK logs
to stderr.
"""

from __future__ import annotations

from modelux_server.mcp.remote import RemoteBackend
from modelux_server.mcp.server import build_server


async def serve_stdio(url: str, key: str) -> None:
    backend = RemoteBackend(url, key)
    try:
        await build_server(backend).run_stdio_async()
    finally:
        await backend.aclose()
