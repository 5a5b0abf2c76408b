from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from modelux_server.kit.schemas import Body, Update, iso
from modelux_server.member.invitations import InvitationView
from modelux_server.member.service import Member

Role = Literal["owner", "admin", "member"]


class MemberCreate(Body):
    # checked by organization/service.py normalize_email (invalid_email), as everywhere
    email: Annotated[str, Field(min_length=3, max_length=320, json_schema_extra={"format": "email"})]
    role: Role = "member"


class MemberUpdate(Update):
    role: Role


def render(m: Member) -> dict[str, Any]:
    return {
        "id": m.id,
        "object": "member",
        "user_id": m.user_id,
        "email": m.email,
        "role": m.role,
        "created_at": iso(m.created_at),
    }


def render_removed(m: Member) -> dict[str, Any]:
    return {**render(m), "deleted": True}


def render_invitation(invitation: InvitationView) -> dict[str, Any]:
    # no user id: whether the address has an account anywhere is not the inviter's to know
    return {
        "id": invitation.id,
        "object": "invitation",
        "email": invitation.email,
        "role": invitation.role,
        "status": invitation.status,
        "expires_at": iso(invitation.expires_at),
        "created_at": iso(invitation.created_at),
    }
