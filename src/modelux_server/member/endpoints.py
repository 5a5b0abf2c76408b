from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelux_server.kit.schemas import many, one
from modelux_server.management.http import Paged, respond
from modelux_server.management.openapi import MANY, ONE, created
from modelux_server.member import invitations, schemas, service

router = APIRouter(prefix="/members", tags=["members"])
invitations_router = APIRouter(prefix="/invitations", tags=["invitations"])


@router.get("", responses=MANY)
async def list_members(request: Request, page: Paged) -> JSONResponse:
    return await respond(request, lambda s, rt, p: service.list_members(s, p, page), many(schemas.render))


@router.post("", status_code=201, responses=created(ONE))
async def add_member(body: schemas.MemberCreate, request: Request) -> JSONResponse:
    """Invite: the person becomes a member once they accept the emailed link."""
    return await respond(
        request,
        lambda s, rt, p: invitations.invite(s, rt, p, email=body.email, role=body.role),
        one(schemas.render_invitation),
        status=201,
    )


@router.get("/{member_id}", responses=ONE)
async def get_member(member_id: str, request: Request) -> JSONResponse:
    return await respond(request, lambda s, rt, p: service.get(s, p, member_id), one(schemas.render))


@router.patch("/{member_id}", responses=ONE)
async def update_member(member_id: str, body: schemas.MemberUpdate, request: Request) -> JSONResponse:
    return await respond(
        request, lambda s, rt, p: service.change_role(s, rt, p, member_id, body.role), one(schemas.render)
    )


@router.delete("/{member_id}", responses=ONE)
async def remove_member(member_id: str, request: Request) -> JSONResponse:
    return await respond(
        request, lambda s, rt, p: service.remove(s, rt, p, member_id), one(schemas.render_removed)
    )


@invitations_router.get("", responses=MANY)
async def list_invitations(request: Request, page: Paged) -> JSONResponse:
    """Pending invitations: neither accepted, revoked nor expired."""
    return await respond(
        request, lambda s, rt, p: invitations.list_pending(s, rt, p, page), many(schemas.render_invitation)
    )


@invitations_router.get("/{invitation_id}", responses=ONE)
async def get_invitation(invitation_id: str, request: Request) -> JSONResponse:
    return await respond(
        request, lambda s, rt, p: invitations.get(s, rt, p, invitation_id), one(schemas.render_invitation)
    )


@invitations_router.delete("/{invitation_id}", responses=ONE)
async def revoke_invitation(invitation_id: str, request: Request) -> JSONResponse:
    """Revoke: the emailed link stops working."""
    return await respond(
        request, lambda s, rt, p: invitations.revoke(s, rt, p, invitation_id), one(schemas.render_invitation)
    )
