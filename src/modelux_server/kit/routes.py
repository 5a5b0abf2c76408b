"""What the router knows about a path, for answers the router itself makes."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Scope

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> str | None:
    """The `Allow` header of a 405: every method some route serves at this path.

    The router names only the methods of the first route whose path matched,
    but `/projects/{id}` is one route per method (GET, PATCH, DELETE). Each
    method is tried against the routes' own matching, which also sees inside
    FastAPI's included routers. Mounts (static files) answer their own 405s.
    None when no route serves the path.
    """
    candidates = [route for route in routes if not isinstance(route, Mount)]
    allowed = [
        method
        for method in METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in candidates)
    ]
    return ", ".join(sorted(allowed)) or None
