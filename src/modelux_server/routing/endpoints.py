from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from modelux_server.billing.service import entitlements
from modelux_server.management.http import page_request, run, runtime
from modelux_server.routing import schemas, service

router = APIRouter(prefix="/routing-configs", tags=["routing-configs"])


@router.get("")
async def list_routing_configs(request: Request) -> JSONResponse:
    page = page_request(request)
    project_id = request.query_params.get("project_id")

    async def handle(session, p):
        ent = await entitlements(session, runtime(request), p.org_id)
        result, views = await service.list_configs(session, ent, p.org_id, page, project_id)
        return {
            "data": [schemas.render(v) for v in views],
            "next_cursor": result.next_cursor,
            "has_more": result.has_more,
        }

    return await run(request, handle)


@router.post("")
async def create_routing_config(body: schemas.RoutingConfigCreate, request: Request) -> JSONResponse:
    async def handle(session, p):
        rt = runtime(request)
        view = await service.create(
            session,
            rt,
            await entitlements(session, rt, p.org_id),
            p.org_id,
            project_id=body.project_id,
            slug=body.slug,
            strategy=body.strategy,
            fields=body.strategy_fields(),
            actor=p.actor,
        )
        return {"data": schemas.render(view)}

    return await run(request, handle, role="admin", status=201)


@router.get("/{config_id}")
async def get_routing_config(config_id: str, request: Request) -> JSONResponse:
    async def handle(session, p):
        ent = await entitlements(session, runtime(request), p.org_id)
        return {"data": schemas.render(await service.get(session, ent, p.org_id, config_id))}

    return await run(request, handle)


@router.patch("/{config_id}")
async def update_routing_config(
    config_id: str, body: schemas.RoutingConfigUpdate, request: Request
) -> JSONResponse:
    async def handle(session, p):
        rt = runtime(request)
        view = await service.update(
            session,
            rt,
            await entitlements(session, rt, p.org_id),
            p.org_id,
            config_id,
            strategy=body.strategy,
            fields=body.strategy_fields(),
            actor=p.actor,
        )
        return {"data": schemas.render(view)}

    return await run(request, handle, role="admin")


@router.delete("/{config_id}")
async def delete_routing_config(config_id: str, request: Request) -> JSONResponse:
    async def handle(session, p):
        config = await service.delete(session, runtime(request), p.org_id, config_id)
        return {"data": {"id": config.id, "object": "routing_config", "deleted": True}}

    return await run(request, handle, role="admin")


@router.get("/{config_id}/versions")
async def list_versions(config_id: str, request: Request) -> JSONResponse:
    async def handle(session, p):
        versions = await service.list_versions(session, p.org_id, config_id)
        return {
            "data": [schemas.render_version(v) for v in versions],
            "next_cursor": None,
            "has_more": False,
        }

    return await run(request, handle)


@router.get("/{config_id}/versions/{version}")
async def get_version(
    config_id: str, version: Annotated[int, Path(ge=1, le=schemas.MAX_VERSION)], request: Request
) -> JSONResponse:
    async def handle(session, p):
        return {
            "data": schemas.render_version(await service.get_version(session, p.org_id, config_id, version))
        }

    return await run(request, handle)


@router.post("/{config_id}/rollback")
async def rollback(config_id: str, body: schemas.Rollback, request: Request) -> JSONResponse:
    async def handle(session, p):
        rt = runtime(request)
        ent = await entitlements(session, rt, p.org_id)
        view = await service.rollback(session, rt, ent, p.org_id, config_id, body.version, p.actor)
        return {"data": schemas.render(view)}

    return await run(request, handle, role="admin")
