from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelux_server.api_key import schemas, service
from modelux_server.management.http import page_body, page_request, run, runtime

router = APIRouter(prefix="/api-keys", tags=["api-keys"])


@router.get("")
async def list_api_keys(request: Request) -> JSONResponse:
    page = page_request(request)
    project_id = request.query_params.get("project_id")

    async def handle(session, p):
        return page_body(await service.list_keys(session, p.org_id, page, project_id), schemas.render)

    return await run(request, handle)


@router.post("")
async def create_api_key(body: schemas.ApiKeyCreate, request: Request) -> JSONResponse:
    async def handle(session, p):
        key, token = await service.create(
            session, runtime(request), p.org_id, project_id=body.project_id, name=body.name
        )
        return {"data": schemas.render(key, token)}

    return await run(request, handle, role="admin", status=201)


@router.get("/{key_id}")
async def get_api_key(key_id: str, request: Request) -> JSONResponse:
    async def handle(session, p):
        return {"data": schemas.render(await service.get(session, p.org_id, key_id))}

    return await run(request, handle)


@router.patch("/{key_id}")
async def update_api_key(key_id: str, body: schemas.ApiKeyUpdate, request: Request) -> JSONResponse:
    async def handle(session, p):
        return {"data": schemas.render(await service.rename(session, p.org_id, key_id, body.name))}

    return await run(request, handle, role="admin")


@router.delete("/{key_id}")
async def revoke_api_key(key_id: str, request: Request) -> JSONResponse:
    async def handle(session, p):
        return {"data": schemas.render(await service.revoke(session, runtime(request), p.org_id, key_id))}

    return await run(request, handle, role="admin")
