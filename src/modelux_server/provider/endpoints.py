from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelux_server.kit.schemas import many, one
from modelux_server.management.http import Paged, respond
from modelux_server.management.openapi import MANY, ONE, created
from modelux_server.provider import schemas, service

router = APIRouter(prefix="/providers", tags=["providers"])


@router.get("", responses=MANY)
async def list_providers(request: Request, page: Paged) -> JSONResponse:
    return await respond(request, lambda s, rt, p: service.list_credentials(s, p, page), many(schemas.render))


@router.post("", status_code=201, responses=created(ONE))
async def create_provider(body: schemas.ProviderCreate, request: Request) -> JSONResponse:
    return await respond(
        request,
        lambda s, rt, p: service.create(
            s,
            rt,
            p,
            vendor=body.vendor,
            name=body.name,
            api_key=body.api_key,
            base_url=body.base_url,
            default=body.default,
        ),
        one(schemas.render),
        status=201,
    )


@router.get("/{provider_id}", responses=ONE)
async def get_provider(provider_id: str, request: Request) -> JSONResponse:
    return await respond(request, lambda s, rt, p: service.get(s, p, provider_id), one(schemas.render))


@router.patch("/{provider_id}", responses=ONE)
async def update_provider(provider_id: str, body: schemas.ProviderUpdate, request: Request) -> JSONResponse:
    changes = body.model_dump(exclude_unset=True)
    return await respond(
        request, lambda s, rt, p: service.update(s, rt, p, provider_id, changes), one(schemas.render)
    )


@router.delete("/{provider_id}", responses=ONE)
async def delete_provider(provider_id: str, request: Request) -> JSONResponse:
    return await respond(
        request, lambda s, rt, p: service.delete(s, rt, p, provider_id), one(schemas.render_deleted)
    )
