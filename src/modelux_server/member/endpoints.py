from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelux_server.management.http import page_body, page_request, run, runtime
from modelux_server.member import invitations, schemas, service

router = APIRouter(prefix="/members", tags=["members"])
invitations_router = APIRouter(prefix="/invitations", tags=["invitations"])


@router.get("")
async def list_members(request: Request) -> JSONResponse:
    page = page_request(request)

    async def handle(session, p):
        result = await service.list_members(session, p.org_id, page)
        users = await service.users_by_id(session, [m.user_id for m in result.items])
        return {
            "data": [schemas.render(m, users.get(m.user_id)) for m in result.items],
            "next_cursor": result.next_cursor,
            "has_more": result.has_more,
        }

    return await run(request, handle)


async def _render_one(session, membership):  # type: ignore[no-untyped-def]
    users = await service.users_by_id(session, [membership.user_id])
    return {"data": schemas.render(membership, users.get(membership.user_id))}


@router.post("")
async def add_member(body: schemas.MemberCreate, request: Request) -> JSONResponse:
    """Invite: the person becomes a member once they accept the emailed link."""

    async def handle(session, p):
        rt = runtime(request)
        invitation = await invitations.invite(session, rt, p, email=body.email, role=body.role)
        return {"data": schemas.render_invitation(invitation, rt.clock.now())}

    return await run(request, handle, role="admin", status=201)


@router.get("/{member_id}")
async def get_member(member_id: str, request: Request) -> JSONResponse:
    async def handle(session, p):
        return await _render_one(session, await service.get(session, p.org_id, member_id))

    return await run(request, handle)


@router.patch("/{member_id}")
async def update_member(member_id: str, body: schemas.MemberUpdate, request: Request) -> JSONResponse:
    async def handle(session, p):
        return await _render_one(session, await service.change_role(session, p, member_id, body.role))

    return await run(request, handle, role="admin")


@router.delete("/{member_id}")
async def remove_member(member_id: str, request: Request) -> JSONResponse:
    async def handle(session, p):
        membership = await service.remove(session, runtime(request), p, member_id)
        return {"data": {**schemas.render(membership, None), "deleted": True}}

    return await run(request, handle, role="admin")


@invitations_router.get("")
async def list_invitations(request: Request) -> JSONResponse:
    """Pending invitations: neither accepted, revoked nor expired."""
    page = page_request(request)

    async def handle(session, p):
        rt = runtime(request)
        now = rt.clock.now()
        result = await invitations.list_pending(session, rt, p.org_id, page)
        return page_body(result, lambda i: schemas.render_invitation(i, now))

    return await run(request, handle, role="admin")


@invitations_router.get("/{invitation_id}")
async def get_invitation(invitation_id: str, request: Request) -> JSONResponse:
    async def handle(session, p):
        invitation = await invitations.get(session, p.org_id, invitation_id)
        return {"data": schemas.render_invitation(invitation, runtime(request).clock.now())}

    return await run(request, handle, role="admin")


@invitations_router.delete("/{invitation_id}")
async def revoke_invitation(invitation_id: str, request: Request) -> JSONResponse:
    """Revoke: the emailed link stops working."""

    async def handle(session, p):
        rt = runtime(request)
        invitation = await invitations.revoke(session, rt, p, invitation_id)
        return {"data": schemas.render_invitation(invitation, rt.clock.now())}

    return await run(request, handle, role="admin")
