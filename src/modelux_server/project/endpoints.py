from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelux_server.kit.schemas import many, one
from modelux_server.management.http import Paged, respond
from modelux_server.management.openapi import MANY, ONE, created
from modelux_server.project import schemas, service

router = APIRouter(prefix="/projects", tags=["projects"])


@router.get("", responses=MANY)
async def list_projects(request: Request, page: Paged) -> JSONResponse:
    return await respond(request, lambda s, rt, p: service.list_projects(s, p, page), many(schemas.render))


@router.post("", status_code=201, responses=created(ONE))
async def create_project(body: schemas.ProjectCreate, request: Request) -> JSONResponse:
    return await respond(
        request,
        lambda s, rt, p: service.create(s, rt, p, name=body.name, description=body.description),
        one(schemas.render),
        status=201,
    )


@router.get("/{project_id}", responses=ONE)
async def get_project(project_id: str, request: Request) -> JSONResponse:
    return await respond(request, lambda s, rt, p: service.get(s, p, project_id), one(schemas.render))


@router.patch("/{project_id}", responses=ONE)
async def update_project(project_id: str, body: schemas.ProjectUpdate, request: Request) -> JSONResponse:
    changes = body.model_dump(exclude_unset=True)
    return await respond(
        request, lambda s, rt, p: service.update(s, rt, p, project_id, changes), one(schemas.render)
    )


@router.delete("/{project_id}", responses=ONE)
async def delete_project(project_id: str, request: Request) -> JSONResponse:
    return await respond(
        request, lambda s, rt, p: service.delete(s, rt, p, project_id), one(schemas.render_deleted)
    )
