from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelux_server.management.http import page_body, page_request, run, runtime
from modelux_server.management_key import schemas, service

router = APIRouter(prefix="/management-keys", tags=["management-keys"])


@router.get("")
async def list_management_keys(request: Request) -> JSONResponse:
    page = page_request(request)

    async def handle(session, p):
        return page_body(await service.list_keys(session, p.org_id, page), schemas.render)

    return await run(request, handle, role="admin")


@router.post("")
async def create_management_key(body: schemas.ManagementKeyCreate, request: Request) -> JSONResponse:
    async def handle(session, p):
        key, token = await service.create(session, runtime(request), p, name=body.name, role=body.role)
        return {"data": schemas.render(key, token)}

    return await run(request, handle, role="admin", status=201)


@router.get("/{key_id}")
async def get_management_key(key_id: str, request: Request) -> JSONResponse:
    async def handle(session, p):
        return {"data": schemas.render(await service.get(session, p.org_id, key_id))}

    return await run(request, handle, role="admin")


@router.delete("/{key_id}")
async def revoke_management_key(key_id: str, request: Request) -> JSONResponse:
    async def handle(session, p):
        return {"data": schemas.render(await service.revoke(session, runtime(request), p, key_id))}

    return await run(request, handle, role="admin")
