"""Who and what the request being served is about, for every log line and span it causes.

`RequestObserver` (kit/observe.py) opens one `RequestContext` per HTTP request and
keeps it in a context variable; code that learns who is calling (the proxy once a
project key is authenticated, management-key and dashboard-session checks) records
the organization and project on it with `bind_caller`. The log formatters
(kit/logs.py) read it, so a line written anywhere during the request carries the
request id and the tenant without being handed them.

The context is one mutable object shared by the request's task and the tasks it
starts (they copy the variable, not the object): an organization bound inside a
streamed response's task is still seen by the access line written at the end.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from starlette.types import Scope

from modelux_server.kit.ids import new_id


class RequestContext:
    __slots__ = ("request_id", "client_request_id", "method", "scope", "org_id", "project_id")

    def __init__(self, scope: Scope, client_request_id: str | None = None) -> None:
        # Always minted here, never taken from the client: the proxy stores it as the
        # request log's primary key and returns it as x-modelux-request-id, so a
        # caller-chosen id could collide with (and drop) another request's row.
        # The caller's own id, when it is a safe token, is kept beside it.
        self.request_id = new_id("req")
        self.client_request_id = client_request_id
        self.method: str = scope["method"]
        self.scope = scope
        self.org_id: str | None = None
        self.project_id: str | None = None

    @property
    def route(self) -> str | None:
        """The matched path template (`/manage/v1/projects/{project_id}`), once routing is done."""
        return route_template(self.scope)


_current: ContextVar[RequestContext | None] = ContextVar("modelux_request", default=None)


def current() -> RequestContext | None:
    """The request being served, or None outside one (start-up, background jobs)."""
    return _current.get()


def enter(context: RequestContext) -> Any:
    """Make `context` current; returns the token `leave` needs."""
    return _current.set(context)


def leave(token: Any) -> None:
    _current.reset(token)


def bind_caller(org_id: str, project_id: str | None = None) -> None:
    """Record the authenticated organization (and project) on the current request, if any."""
    context = _current.get()
    if context is not None:
        context.org_id = org_id
        if project_id is not None:
            context.project_id = project_id


def route_template(scope: Scope) -> str | None:
    """The template of the route that answered, or None when none matched (a 404)."""
    # FastAPI (pinned) keeps the matched route of an included router, prefix and
    # all, here; the route object in scope["route"] knows only its own part of the
    # path. tests/observability/test_access_log.py notices if this moves.
    selected = scope.get("fastapi", {}).get("effective_route_context")
    if selected is not None:
        path = getattr(selected.starlette_route, "path_format", None) or selected.path_format
        if isinstance(path, str) and path:
            return path
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):  # a route of the app itself (/healthz)
        return path
    if "endpoint" not in scope:
        return None
    if "app_root_path" in scope:  # a Mount (/static): its prefix, then whatever follows
        return f"{scope['root_path']}/{{path}}"
    # a plain Starlette route of the app's own (/mcp) leaves only its endpoint and
    # parameters: without parameters the path is the template
    return None if scope.get("path_params") else str(scope["path"])
