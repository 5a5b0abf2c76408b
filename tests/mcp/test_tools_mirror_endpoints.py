"""Every MCP tool has an operation, and every operation names a management endpoint the API serves."""

from __future__ import annotations

from typing import Any

import pytest

from modelux_server.mcp.operations import OPERATIONS
from modelux_server.mcp.remote import MANAGE
from modelux_server.mcp.tools import build_tools


def _routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every documented endpoint: the management API's are all in the schema."""
    return {(method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_each_operation_mirrors_a_management_route(app: Any) -> None:
    routes = _routes(app)
    missing = sorted(
        f"{op.name}: {op.method} {MANAGE}{op.path}"
        for op in OPERATIONS.values()
        if (op.method, MANAGE + op.path) not in routes
    )
    assert missing == []


def test_each_tool_has_an_operation_and_each_operation_a_tool() -> None:
    class Unused:
        async def call(self, *args: Any) -> dict[str, Any]:
            raise AssertionError("no tool is called here")

    assert {tool.name for tool in build_tools(Unused())} == set(OPERATIONS)
