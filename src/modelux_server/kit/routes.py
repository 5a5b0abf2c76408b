"""What the router knows about a path, for answers the router itself makes."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import BaseRoute, Match
from starlette.types import Scope


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> str:
    """The `Allow` header of a 405: every method some route serves at this path.

    Starlette names only the methods of the first route whose path matched, but
    `/projects/{id}` is several routes (GET, PATCH, DELETE), one per method.
    """
    methods: set[str] = set()
    for route in routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))
