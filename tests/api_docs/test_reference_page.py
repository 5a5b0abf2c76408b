"""`/docs`: the API reference, rendered on the server from /openapi.json, with no inline code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelux_server.api_docs.endpoints import _env
from modelux_server.api_docs.view import reference
from modelux_server.app import create_app
from modelux_server.config import Settings

MANAGE = "/manage/v1/"


class Page(HTMLParser):
    """The tags, attributes, ids and text of a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def ids(self) -> set[str]:
        return {str(attrs["id"]) for _, attrs in self.tags if attrs.get("id")}

    @property
    def hrefs(self) -> set[str]:
        return {str(attrs["href"]) for tag, attrs in self.tags if tag == "a" and attrs.get("href")}

    @property
    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'docs.db'}",
        data_dir=tmp_path,
        secret_key="docs-secret-key",
        workers_enabled=False,
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://modelux.test") as c:
        yield c


async def test_docs_lists_every_management_operation_of_the_openapi_document(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    r = await client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = Page(r.text)
    operations = [
        (method, path, op)
        for path, item in document["paths"].items()
        if path.startswith(MANAGE)
        for method, op in item.items()
    ]
    assert len(operations) > 30
    for method, path, op in operations:
        assert f"op-{op['operationId']}" in page.ids, (method, path)
        assert f"{method.upper()} {path}" in page.words, (method, path)
        assert op["summary"] in page.words
    # grouped by tag, one section each
    tags = {op["tags"][0] for _, _, op in operations}
    assert {f"tag-{tag}" for tag in tags} <= page.ids
    assert "/openapi.json" in page.hrefs


async def test_docs_shows_bodies_parameters_responses_and_the_key_scheme(client: httpx.AsyncClient) -> None:
    page = Page((await client.get("/docs")).text)
    words = page.words
    # the request body of POST /projects: its schema, linked, and its fields with their limits
    assert "#model-ProjectCreate" in page.hrefs and "model-ProjectCreate" in page.ids
    assert "name string min length 1; max length 200; pattern ^[^\\x00]*[^\\s\\x00][^\\x00]*$ yes" in words
    # a list call's query parameters and the error answers in the contract's shape
    assert "limit query integer min 1; max 200 no" in words
    assert "#model-Error" in page.hrefs and "422 Error" in words
    # the management key scheme, and which calls need it
    assert "managementKey : HTTP bearer (mlx_mk_...)" in words
    assert "#auth-managementKey" in page.hrefs
    assert "Authentication: none (public)" in words  # the plan catalog


async def test_docs_runs_no_inline_code_and_styles_only_from_our_static_files(
    client: httpx.AsyncClient,
) -> None:
    page = Page((await client.get("/docs")).text)
    names = [tag for tag, _ in page.tags]
    assert "script" not in names and "style" not in names
    for tag, attrs in page.tags:
        assert "style" not in attrs, tag
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        for url in (attrs.get("href"), attrs.get("src")):
            assert url is None or url.startswith(("#", "/")), url  # nothing from another origin
    sheets = [str(a["href"]) for t, a in page.tags if t == "link" and a.get("rel") == "stylesheet"]
    assert sheets == ["/static/reference.css"]
    css = await client.get(sheets[0])
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_every_value_from_the_document_is_escaped() -> None:
    hostile = "<script>alert(1)</script>"
    document: dict[str, Any] = {
        "info": {"title": hostile, "version": "1", "description": hostile},
        "paths": {
            "/manage/v1/x": {
                "get": {
                    "tags": [hostile],
                    "summary": hostile,
                    "operationId": hostile,
                    "parameters": [{"name": hostile, "in": "query", "schema": {"enum": [hostile]}}],
                    "responses": {"200": {"description": hostile}},
                }
            }
        },
        "components": {"schemas": {hostile: {"type": "object", "properties": {hostile: {"type": "string"}}}}},
    }
    html = _env.get_template("reference.html").render(ref=reference(document), openapi_url="/openapi.json")
    page = Page(html)
    assert "script" not in [tag for tag, _ in page.tags]
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert all(not i or "<" not in i for i in page.ids)
