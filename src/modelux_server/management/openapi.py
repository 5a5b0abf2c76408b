"""What `/openapi.json` says about the management API beyond what FastAPI infers.

The management endpoints authenticate inside `respond` (management/http.py),
not through a FastAPI dependency, and every error leaves through the app's
handlers in the contract's shape; FastAPI sees neither. `describe` adds both
to the generated document, so it is the truth a client generator, the `/docs`
page and the fuzz tests (tests/fuzz) can rely on:

* the bearer scheme `managementKey` on every `/manage/v1` operation, unless
  its route opts out with `openapi_extra=PUBLIC` (the plan catalog);
* the `Idempotency-Key` header on unsafe operations;
* the contract's `Error` body for each error status an operation can answer,
  in place of FastAPI's own 422 shape, which this server never sends.

Endpoints state their success body with `ONE`, `MANY` or `created(ONE)`:
the envelopes of kit/schemas.py (`one`, `many`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from modelux_server.auth.tokens import MANAGEMENT_KEY
from modelux_server.kit.schemas import no_nul
from modelux_server.management.idempotency import HEADER as IDEMPOTENCY_HEADER
from modelux_server.management.idempotency import MAX_KEY_LENGTH

PREFIX = "/manage/v1/"
SCHEME = "managementKey"
PUBLIC: dict[str, Any] = {"security": []}
UNSAFE = ("post", "put", "patch", "delete")
ERROR_REF = {"$ref": "#/components/schemas/Error"}
DESCRIPTION = (
    "The management API of modelux-server, under /manage/v1. Send a management key as a bearer "
    'token. Single objects come as {"data": {...}}, lists as {"data": [...], "next_cursor", '
    '"has_more"}; every error as {"error": {"type", "code", "message"}}. Unsafe calls '
    "accept an Idempotency-Key header."
)

# what each error status means for a management call (CONTRACT.md section 3)
ERRORS = {
    400: "Malformed request: the body is not JSON, not an object, or of the wrong content type.",
    401: f"No management key, or one that is malformed, unknown or revoked ({MANAGEMENT_KEY}...).",
    402: "A plan limit or a feature the plan lacks (see `type`: plan_limit_exceeded, feature_not_in_plan).",
    403: "The key's role may not do this.",
    404: "Not found, also when the object belongs to another organization.",
    409: "Conflict with the current state, or an Idempotency-Key reused with another request.",
    413: "The body is larger than the server accepts.",
    422: "A parameter or a field of the body is invalid; `param` names it.",
    429: "Too many requests with this key; `Retry-After` says when to try again.",
}


class One(BaseModel):
    """A single object."""

    data: dict[str, Any]


class Many(BaseModel):
    """A page of objects; pass `next_cursor` as `cursor` for the next one."""

    data: list[dict[str, Any]]
    next_cursor: str | None = Field(description="null on the last page")
    has_more: bool


Responses = dict[int | str, dict[str, Any]]
ONE: Responses = {200: {"model": One}}
MANY: Responses = {200: {"model": Many}}


def created(responses: Responses) -> Responses:
    """`responses` answered with 201 Created instead of 200."""
    return {201 if status == 200 else status: doc for status, doc in responses.items()}


def install(app: FastAPI) -> None:
    """Serve the described document at /openapi.json (FastAPI's, completed once)."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    described: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not described:
            described.update(describe(generate()))
        return described

    app.openapi = openapi  # type: ignore[method-assign]


def describe(document: dict[str, Any]) -> dict[str, Any]:
    """Complete FastAPI's document in place (see the module docstring); returns it."""
    document.setdefault("info", {}).setdefault("description", DESCRIPTION)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Error"] = _error_schema()
    components.setdefault("securitySchemes", {})[SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": f"{MANAGEMENT_KEY}...",
        "description": (
            f"A management key ({MANAGEMENT_KEY}...) of one organization, sent as "
            f"`Authorization: Bearer {MANAGEMENT_KEY}...`. Create one in the dashboard "
            "(Management keys); it is shown once."
        ),
    }
    for path, operations in document.get("paths", {}).items():
        if not path.startswith(PREFIX):
            continue
        for method, operation in operations.items():
            _describe_operation(method, operation)
    # FastAPI's validation error shapes are referenced by nothing once replaced
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return document


def _describe_operation(method: str, operation: dict[str, Any]) -> None:
    secured = operation.setdefault("security", [{SCHEME: []}]) != []
    parameters = operation.setdefault("parameters", [])
    for parameter in parameters:
        # kit/http_guards.py refuses a NUL in any path or query, for every route
        no_nul(parameter.get("schema", {}))
    if secured and method in UNSAFE:
        parameters.append(_idempotency_parameter())
    if not parameters:
        del operation["parameters"]
    statuses: set[int] = set()
    if parameters:
        statuses.add(422)
    # a path names an object, and so may a body (`project_id`)
    if any(p["in"] == "path" for p in parameters) or "requestBody" in operation:
        statuses.add(404)
    if "requestBody" in operation:
        statuses |= {400, 413, 422}
    if secured:
        statuses |= {401, 403, 429}
    if secured and method in UNSAFE:
        statuses |= {402, 409}
    # a read that needs a plan feature (the audit log, the access review)
    if operation.pop("x-modelux-feature", None):
        statuses.add(402)
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    for status in sorted(statuses):
        responses[str(status)] = {
            "description": ERRORS[status],
            "content": {"application/json": {"schema": ERROR_REF}},
        }


def _idempotency_parameter() -> dict[str, Any]:
    return {
        "name": IDEMPOTENCY_HEADER,
        "in": "header",
        "required": False,
        "description": (
            "Any unique string: a retry with the same key and body answers the first result "
            "instead of acting twice (kept 24 hours, per key)."
        ),
        # idempotency.check_key: no control characters, at most MAX_KEY_LENGTH
        "schema": {"type": "string", "maxLength": MAX_KEY_LENGTH, "pattern": "^[^\\x00-\\x1f\\x7f]*$"},
    }


def _error_schema() -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "title": "Error",
        "description": "Every error answer of the management API (CONTRACT.md section 3).",
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["type", "code", "message"],
                "properties": {
                    "type": {**text, "description": "The family, e.g. invalid_request_error."},
                    "code": {**text, "description": "The precise reason, e.g. missing_field."},
                    "message": {**text, "description": "A sentence for people."},
                    "param": {
                        "type": ["string", "null"],
                        "description": "The parameter or field at fault, when one is.",
                    },
                },
            }
        },
    }
