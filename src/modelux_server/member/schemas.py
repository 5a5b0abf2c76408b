from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from modelux_server.kit.schemas import Body, Update, iso
from modelux_server.member.invitations import status
from modelux_server.models import Invitation, Membership, User

Role = Literal["owner", "admin", "member"]


class MemberCreate(Body):
    email: Annotated[str, Field(min_length=3, max_length=320)]
    role: Role = "member"


class MemberUpdate(Update):
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


def render_invitation(invitation: Invitation, now: datetime) -> dict[str, Any]:
    # no user id: whether the address has an account anywhere is not the inviter's to know
    return {
        "id": invitation.id,
        "object": "invitation",
        "email": invitation.email,
        "role": invitation.role,
        "status": status(invitation, now),
        "expires_at": iso(invitation.expires_at),
        "created_at": iso(invitation.created_at),
    }
