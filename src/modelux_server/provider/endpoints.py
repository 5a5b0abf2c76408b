from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from modelux_server.management.http import page_body, page_request, run, runtime
from modelux_server.provider import schemas, service

router = APIRouter(prefix="/providers", tags=["providers"])


@router.get("")
async def list_providers(request: Request) -> JSONResponse:
    page = page_request(request)

    async def handle(session, p):
        return page_body(await service.list_credentials(session, p.org_id, page), schemas.render)

    return await run(request, handle)


@router.post("")
async def create_provider(body: schemas.ProviderCreate, request: Request) -> JSONResponse:
    async def handle(session, p):
        credential = await service.create(
            session,
            runtime(request),
            p.org_id,
            vendor=body.vendor,
            name=body.name,
            api_key=body.api_key,
            base_url=body.base_url,
        )
        return {"data": schemas.render(credential)}

    return await run(request, handle, role="admin", status=201)


@router.get("/{provider_id}")
async def get_provider(provider_id: str, request: Request) -> JSONResponse:
    async def handle(session, p):
        return {"data": schemas.render(await service.get(session, p.org_id, provider_id))}

    return await run(request, handle)


@router.patch("/{provider_id}")
async def update_provider(provider_id: str, body: schemas.ProviderUpdate, request: Request) -> JSONResponse:
    async def handle(session, p):
        changes = body.model_dump(exclude_unset=True)
        credential = await service.update_credential(
            session, runtime(request), p.org_id, provider_id, changes
        )
        return {"data": schemas.render(credential)}

    return await run(request, handle, role="admin")


@router.delete("/{provider_id}")
async def delete_provider(provider_id: str, request: Request) -> JSONResponse:
    async def handle(session, p):
        credential = await service.delete(session, runtime(request), p.org_id, provider_id)
        return {"data": {**schemas.render(credential), "deleted": True}}

    return await run(request, handle, role="admin")
