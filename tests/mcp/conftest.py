"""MCP fixtures: the app on a real port, an organization, and MCP clients over HTTP and stdio."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from mcp import Client, StdioServerParameters
from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from modelux_server.management_key.service import issue_management_key
from tests.conftest import Org, make_org
from tests.support.live_server import LiveServer


@pytest.fixture
def live(settings: Settings, clock: FrozenClock) -> Iterator[LiveServer]:
    # the fake upstream listens on loopback, which the default egress policy refuses
    server = LiveServer(settings.model_copy(update={"egress_allow": "127.0.0.0/8"}), clock=clock).start()
    yield server
    server.stop()


@pytest.fixture
def acme(live: LiveServer) -> Org:
    """An organization on Free whose key has the owner role."""
    org: Org = live.call(make_org(live.runtime))
    return org


async def key_with_role(live: LiveServer, org: Org, role: str) -> str:
    rt = live.runtime

    async def issue() -> str:
        async with rt.db.session() as session:
            _, token = await issue_management_key(session, rt, org.id, name=role, role=role, created_by=None)
        return token

    return await live.acall(issue())


def rest(live: LiveServer, key: str) -> httpx.AsyncClient:
    """The management API, to compare a tool's answer with its endpoint's."""
    return httpx.AsyncClient(base_url=f"{live.url}/manage/v1", headers={"Authorization": f"Bearer {key}"})


@asynccontextmanager
async def http_client(live: LiveServer, key: str) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=20) as http,
        Client(streamable_http_client(f"{live.url}/mcp", http_client=http)) as client,
    ):
        yield client


def stdio_params(live: LiveServer, key: str, *, via_env: bool = False) -> StdioServerParameters:
    command = [sys.executable, "-m", "modelux_server.cli", "mcp"]
    if via_env:
        return StdioServerParameters(
            command=command[0], args=command[1:], env={"MODELUX_MCP_URL": live.url, "MODELUX_MCP_KEY": key}
        )
    return StdioServerParameters(command=command[0], args=[*command[1:], "--url", live.url, "--key", key])


@asynccontextmanager
async def stdio_client(live: LiveServer, key: str, *, via_env: bool = False) -> AsyncIterator[Client]:
    async with Client(stdio_params(live, key, via_env=via_env)) as client:
        yield client


def ok(result: CallToolResult) -> dict[str, Any]:
    """A successful tool result: structured content, which the text block repeats."""
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]
    return result.structured_content


def error(result: CallToolResult) -> dict[str, Any]:
    """A tool error: `{"status", "error": {...}}`, in structured content and as text."""
    assert result.is_error, result.content
    assert result.structured_content is not None
    assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]
    return result.structured_content
