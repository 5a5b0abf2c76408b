from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelux_server.kit.schemas import many, one
from modelux_server.management.http import Paged, respond
from modelux_server.management.openapi import MANY, ONE, created
from modelux_server.management_key import schemas, service

router = APIRouter(prefix="/management-keys", tags=["management-keys"])


@router.get("", responses=MANY)
async def list_management_keys(request: Request, page: Paged) -> JSONResponse:
    return await respond(request, lambda s, rt, p: service.list_keys(s, p, page), many(schemas.render))


@router.post("", status_code=201, responses=created(ONE))
async def create_management_key(body: schemas.ManagementKeyCreate, request: Request) -> JSONResponse:
    return await respond(
        request,
        lambda s, rt, p: service.create(s, rt, p, name=body.name, role=body.role),
        one(schemas.render_created),
        status=201,
    )


@router.get("/{key_id}", responses=ONE)
async def get_management_key(key_id: str, request: Request) -> JSONResponse:
    return await respond(request, lambda s, rt, p: service.get(s, p, key_id), one(schemas.render))


@router.delete("/{key_id}", responses=ONE)
async def revoke_management_key(key_id: str, request: Request) -> JSONResponse:
    return await respond(request, lambda s, rt, p: service.revoke(s, rt, p, key_id), one(schemas.render))
