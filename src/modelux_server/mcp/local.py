"""The backend behind `/mcp`: the services, run in this process.

Each call is one transaction, like a management request: authenticate the
key from this call's own Authorization header (so a key revoked mid-session
stops working at once), run the service (which checks the role), commit.
"""

from __future__ import annotations

import logging
from typing import Any

from mcp.server.mcpserver import Context

from modelux_server.auth.management import authenticate_management_key
from modelux_server.errors import ModeluxError
from modelux_server.mcp.operations import Operation
from modelux_server.mcp.tools import ToolFailure
from modelux_server.services import Services

log = logging.getLogger("modelux.mcp")

INTERNAL = {
    "error": {"type": "api_error", "code": "internal_error", "message": "Something went wrong on our side."}
}


class LocalBackend:
    def __init__(self, rt: Services) -> None:
        self.rt = rt

    async def call(self, op: Operation, args: dict[str, Any], ctx: Context) -> dict[str, Any]:
        headers = ctx.headers or {}
        try:
            async with self.rt.db.session() as session:
                principal = None
                if not op.public:
                    principal = await authenticate_management_key(
                        session, headers.get("authorization"), source="mcp"
                    )
                return await op.run(session, self.rt, principal, args)
        except ModeluxError as exc:
            raise ToolFailure(exc.status, exc.body()) from exc
        except Exception as exc:
            # as the app's handler does: the trace to our log, a generic 500 to the caller
            log.exception("MCP tool %s failed", op.name)
            raise ToolFailure(500, INTERNAL) from exc
