from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelux_server.api_key import schemas, service
from modelux_server.kit.schemas import many, one
from modelux_server.management.http import Paged, ProjectFilter, respond
from modelux_server.management.openapi import MANY, ONE, created

router = APIRouter(prefix="/api-keys", tags=["api-keys"])


@router.get("", responses=MANY)
async def list_api_keys(request: Request, page: Paged, project_id: ProjectFilter = None) -> JSONResponse:
    return await respond(
        request, lambda s, rt, p: service.list_keys(s, p, page, project_id), many(schemas.render)
    )


@router.post("", status_code=201, responses=created(ONE))
async def create_api_key(body: schemas.ApiKeyCreate, request: Request) -> JSONResponse:
    return await respond(
        request,
        lambda s, rt, p: service.create(
            s,
            rt,
            p,
            project_id=body.project_id,
            name=body.name,
            rate_limit_per_minute=body.rate_limit_per_minute,
            expires_at=body.expires_at,
        ),
        one(schemas.render_created),
        status=201,
    )


@router.get("/{key_id}", responses=ONE)
async def get_api_key(key_id: str, request: Request) -> JSONResponse:
    return await respond(request, lambda s, rt, p: service.get(s, p, key_id), one(schemas.render))


@router.patch("/{key_id}", responses=ONE)
async def update_api_key(key_id: str, body: schemas.ApiKeyUpdate, request: Request) -> JSONResponse:
    changes = body.model_dump(exclude_unset=True)
    return await respond(
        request, lambda s, rt, p: service.update(s, rt, p, key_id, changes), one(schemas.render)
    )


@router.delete("/{key_id}", responses=ONE)
async def revoke_api_key(key_id: str, request: Request) -> JSONResponse:
    return await respond(request, lambda s, rt, p: service.revoke(s, rt, p, key_id), one(schemas.render))
