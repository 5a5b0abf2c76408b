"""The MCPServer: the tools of tools.py over one backend.

The SDK validates tool arguments before a tool runs and reports a failure as
plain text. The management API answers bad input with a 422 in the
contract's shape, so `ArgumentCheck` validates first, with the same argument
models, and answers the same body the API would.
"""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver.tools import Tool
from pydantic import ValidationError

from modelux_server.errors import ValidationFailed
from modelux_server.kit.schemas import has_nul, invalid_input
from modelux_server.mcp.tools import Backend, build_tools, failure

INSTRUCTIONS = """\
Tools for one modelux organization (the one the management key belongs to):
read the plan, usage meters, invoices and plan catalog; create projects, API
keys and provider credentials; start or change a subscription.

Results are the management API's JSON. Errors are tool errors whose content
is {"status": <HTTP status>, "error": {"type", "code", "message", ...}}. A
status 402 with error.upgrade means a plan limit or a missing feature:
error.upgrade names the plan that lifts it and the billing page URL; tell the
user, and only call change_plan or create_checkout_session when they ask for
the upgrade.

change_plan charges the card on file immediately (moving to free refunds the
unused paid time instead). Call preview_change_plan first with the same plan
and interval, show the user the amount it reports, and call change_plan only
once they agree. If change_plan fails with error.code
"payment_action_required", the bank wants the user to confirm the payment
(3-D Secure): give the user error.hosted_invoice_url to open and confirm it;
nothing changes until it is paid. With error.code "payment_failed" the card
was declined; error.hosted_invoice_url, when present, is where they can pay
with another card.
"""


def build_server(backend: Backend) -> MCPServer:
    tools = build_tools(backend)
    return MCPServer(
        "modelux",
        title="modelux",
        instructions=INSTRUCTIONS,
        tools=tools,
        middleware=[ArgumentCheck(tools)],
        # only applies where nothing configured logging yet (`modelux mcp`),
        # and there only warnings belong on stderr next to the assistant
        log_level="WARNING",
        # no resources or subscriptions are served, so none are advertised
        subscriptions=False,
    )


class ArgumentCheck:
    """Refuses bad tool arguments with the 422 body the management API sends."""

    def __init__(self, tools: list[Tool]) -> None:
        self.tools = {tool.name: tool for tool in tools}

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call" or not isinstance(ctx.params, dict):
            return await call_next(ctx)
        tool = self.tools.get(str(ctx.params.get("name")))
        arguments = ctx.params.get("arguments") or {}
        if tool is None or not isinstance(arguments, dict):
            return await call_next(ctx)  # the SDK's own answer (unknown tool, malformed call)
        unknown = sorted(set(arguments) - set(tool.parameters.get("properties", {})))
        if unknown:
            return failure(
                422, invalid(f"{unknown[0]}: Extra inputs are not permitted", "unknown_field", unknown[0])
            )
        # the REST bodies' rule, for arguments too (ids and cursors included)
        tainted = next((name for name, value in sorted(arguments.items()) if has_nul(value)), None)
        if tainted is not None:
            return failure(
                422, invalid(f"{tainted}: must not contain NUL characters", "invalid_characters", tainted)
            )
        try:
            tool.fn_metadata.validate_arguments(arguments)
        except ValidationError as exc:
            return failure(422, validation_body(exc))
        return await call_next(ctx)


def validation_body(exc: ValidationError) -> dict[str, Any]:
    # built by the function behind the app's RequestValidationError handler
    return invalid_input(exc.errors()).body()


def invalid(message: str, code: str, param: str | None) -> dict[str, Any]:
    return ValidationFailed(message, code=code, param=param).body()
