from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from modelux_server.kit.schemas import Body, iso
from modelux_server.models import ManagementKey

Role = Literal["owner", "admin", "member"]


class ManagementKeyCreate(Body):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    role: Role = "admin"


def render(k: ManagementKey, token: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": k.id,
        "object": "management_key",
        "name": k.name,
        "role": k.role,
        "hint": k.hint,
        "created_at": iso(k.created_at),
        "revoked_at": iso(k.revoked_at),
    }
    if token is not None:
        out["key"] = token
    return out


def render_created(created: tuple[ManagementKey, str]) -> dict[str, Any]:
    key, token = created
    return render(key, token)
