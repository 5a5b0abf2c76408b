from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from modelux_server.kit.schemas import Body, iso
from modelux_server.models import Membership, User

Role = Literal["owner", "admin", "member"]


class MemberCreate(Body):
    email: Annotated[str, Field(min_length=3, max_length=320)]
    role: Role = "member"


class MemberUpdate(Body):
    role: Role


def render(m: Membership, user: User | None) -> dict[str, Any]:
    return {
        "id": m.id,
        "object": "member",
        "user_id": m.user_id,
        "email": user.email if user else None,
        "role": m.role,
        "created_at": iso(m.created_at),
    }
