from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelux_server.api_key import schemas, service
from modelux_server.kit.schemas import many, one
from modelux_server.management.http import page_request, respond

router = APIRouter(prefix="/api-keys", tags=["api-keys"])


@router.get("")
async def list_api_keys(request: Request) -> JSONResponse:
    page = page_request(request)
    project_id = request.query_params.get("project_id")
    return await respond(
        request, lambda s, rt, p: service.list_keys(s, p, page, project_id), many(schemas.render)
    )


@router.post("")
async def create_api_key(body: schemas.ApiKeyCreate, request: Request) -> JSONResponse:
    return await respond(
        request,
        lambda s, rt, p: service.create(s, rt, p, project_id=body.project_id, name=body.name),
        one(schemas.render_created),
        status=201,
    )


@router.get("/{key_id}")
async def get_api_key(key_id: str, request: Request) -> JSONResponse:
    return await respond(request, lambda s, rt, p: service.get(s, p, key_id), one(schemas.render))


@router.patch("/{key_id}")
async def update_api_key(key_id: str, body: schemas.ApiKeyUpdate, request: Request) -> JSONResponse:
    return await respond(
        request, lambda s, rt, p: service.rename(s, p, key_id, body.name), one(schemas.render)
    )


@router.delete("/{key_id}")
async def revoke_api_key(key_id: str, request: Request) -> JSONResponse:
    return await respond(request, lambda s, rt, p: service.revoke(s, rt, p, key_id), one(schemas.render))
