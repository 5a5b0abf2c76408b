from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from modelux_server.kit.schemas import Body, Update, iso
from modelux_server.models import ApiKey

Name = Annotated[str, Field(min_length=1, max_length=200)]


class ApiKeyCreate(Body):
    project_id: Annotated[str, Field(min_length=1, max_length=40)]
    name: Name = "default"


class ApiKeyUpdate(Update):
    name: Name


def render(k: ApiKey, token: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": k.id,
        "object": "api_key",
        "project_id": k.project_id,
        "name": k.name,
        "hint": k.hint,
        "created_at": iso(k.created_at),
        "revoked_at": iso(k.revoked_at),
    }
    if token is not None:
        out["key"] = token  # shown once, never stored
    return out


def render_created(created: tuple[ApiKey, str]) -> dict[str, Any]:
    key, token = created
    return render(key, token)
