from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from modelux_server.kit.schemas import WHOLE_NUMBER, Body, Update, iso
from modelux_server.models import ApiKey
from modelux_server.plans.catalog import MAX_PER_MINUTE

Name = Annotated[str, Field(min_length=1, max_length=200)]
# a JSON integer (not "60", 60.5 or true); null: the plan's limit, or the server's default
PerMinute = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_PER_MINUTE,
        description="Requests per minute for this key; null follows the plan's or the server's default.",
    ),
    WHOLE_NUMBER,
]


class ApiKeyCreate(Body):
    project_id: Annotated[str, Field(min_length=1, max_length=40)]
    name: Name = "default"
    rate_limit_per_minute: PerMinute | None = None


class ApiKeyUpdate(Update):
    nullable = frozenset({"rate_limit_per_minute"})

    name: Name | None = None
    rate_limit_per_minute: PerMinute | None = None


def render(k: ApiKey, token: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": k.id,
        "object": "api_key",
        "project_id": k.project_id,
        "name": k.name,
        "hint": k.hint,
        "rate_limit_per_minute": k.rate_limit_per_minute,
        "created_at": iso(k.created_at),
        "revoked_at": iso(k.revoked_at),
    }
    if token is not None:
        out["key"] = token  # shown once, never stored
    return out


def render_created(created: tuple[ApiKey, str]) -> dict[str, Any]:
    key, token = created
    return render(key, token)
