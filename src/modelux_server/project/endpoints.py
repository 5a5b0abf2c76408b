from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelux_server.management.http import page_body, page_request, run, runtime
from modelux_server.project import schemas, service

router = APIRouter(prefix="/projects", tags=["projects"])


@router.get("")
async def list_projects(request: Request) -> JSONResponse:
    page = page_request(request)

    async def handle(session, p):
        return page_body(await service.list_projects(session, p.org_id, page), schemas.render)

    return await run(request, handle)


@router.post("")
async def create_project(body: schemas.ProjectCreate, request: Request) -> JSONResponse:
    async def handle(session, p):
        project = await service.create(
            session, runtime(request), p.org_id, name=body.name, description=body.description
        )
        return {"data": schemas.render(project)}

    return await run(request, handle, role="admin", status=201)


@router.get("/{project_id}")
async def get_project(project_id: str, request: Request) -> JSONResponse:
    async def handle(session, p):
        return {"data": schemas.render(await service.get(session, p.org_id, project_id))}

    return await run(request, handle)


@router.patch("/{project_id}")
async def update_project(project_id: str, body: schemas.ProjectUpdate, request: Request) -> JSONResponse:
    async def handle(session, p):
        changes = body.model_dump(exclude_unset=True)
        return {"data": schemas.render(await service.update_project(session, p.org_id, project_id, changes))}

    return await run(request, handle, role="admin")


@router.delete("/{project_id}")
async def delete_project(project_id: str, request: Request) -> JSONResponse:
    async def handle(session, p):
        project = await service.delete(session, runtime(request), p.org_id, project_id)
        return {"data": {**schemas.render(project), "deleted": True}}

    return await run(request, handle, role="admin")
