from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from modelux_server.kit.schemas import many, one
from modelux_server.management.http import Paged, ProjectFilter, respond
from modelux_server.management.openapi import MANY, ONE, created
from modelux_server.routing import schemas, service

router = APIRouter(prefix="/routing-configs", tags=["routing-configs"])


@router.get("", responses=MANY)
async def list_routing_configs(
    request: Request, page: Paged, project_id: ProjectFilter = None
) -> JSONResponse:
    return await respond(
        request,
        lambda s, rt, p: service.list_configs(s, rt, p, page, project_id),
        many(schemas.render),
    )


@router.post("", status_code=201, responses=created(ONE))
async def create_routing_config(body: schemas.RoutingConfigCreate, request: Request) -> JSONResponse:
    return await respond(
        request,
        lambda s, rt, p: service.create(
            s,
            rt,
            p,
            project_id=body.project_id,
            slug=body.slug,
            strategy=body.strategy,
            fields=body.strategy_fields(),
        ),
        one(schemas.render),
        status=201,
    )


@router.get("/{config_id}", responses=ONE)
async def get_routing_config(config_id: str, request: Request) -> JSONResponse:
    return await respond(request, lambda s, rt, p: service.get(s, rt, p, config_id), one(schemas.render))


@router.patch("/{config_id}", responses=ONE)
async def update_routing_config(
    config_id: str, body: schemas.RoutingConfigUpdate, request: Request
) -> JSONResponse:
    return await respond(
        request,
        lambda s, rt, p: service.update(
            s, rt, p, config_id, strategy=body.strategy, fields=body.strategy_fields()
        ),
        one(schemas.render),
    )


@router.delete("/{config_id}", responses=ONE)
async def delete_routing_config(config_id: str, request: Request) -> JSONResponse:
    return await respond(
        request, lambda s, rt, p: service.delete(s, rt, p, config_id), one(schemas.render_deleted)
    )


@router.get("/{config_id}/versions", responses=MANY)
async def list_versions(config_id: str, request: Request) -> JSONResponse:
    return await respond(
        request, lambda s, rt, p: service.list_versions(s, p, config_id), many(schemas.render_version)
    )


@router.get("/{config_id}/versions/{version}", responses=ONE)
async def get_version(
    config_id: str, version: Annotated[int, Path(ge=1, le=schemas.MAX_VERSION)], request: Request
) -> JSONResponse:
    return await respond(
        request,
        lambda s, rt, p: service.get_version(s, p, config_id, version),
        one(schemas.render_version),
    )


@router.post("/{config_id}/rollback", responses=ONE)
async def rollback(config_id: str, body: schemas.Rollback, request: Request) -> JSONResponse:
    return await respond(
        request, lambda s, rt, p: service.rollback(s, rt, p, config_id, body.version), one(schemas.render)
    )
