"""`GET /docs`: the management API's reference, from the same document as /openapi.json."""

from __future__ import annotations

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from modelux_server.api_docs.view import reference

PATH_PREFIX = "/manage/v1/"

router = APIRouter(include_in_schema=False)

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("modelux_server.api_docs", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@router.get("/docs")
async def api_reference(request: Request) -> HTMLResponse:
    document = request.app.openapi()
    page = _env.get_template("reference.html").render(
        ref=reference(document, path_prefix=PATH_PREFIX), openapi_url=request.app.openapi_url
    )
    return HTMLResponse(page)
