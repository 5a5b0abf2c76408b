"""Input PostgreSQL cannot hold is refused at the boundary, the same on both databases.

NUL characters in body strings, path ids, query parameters and dashboard
forms, integers past PostgreSQL's INTEGER, and over-long and chunked bodies:
each is a 4xx in the contract's shape, stores nothing, and logs no traceback.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from modelux_server.dashboard.security import SESSION_COOKIE
from modelux_server.errors import NotFound, ValidationFailed
from modelux_server.kit.pagination import PageRequest
from modelux_server.kit.repository import get_owned, list_owned
from modelux_server.models import Project
from modelux_server.services import Services
from tests.conftest import Org
from tests.dashboard.forms import browser, post_form, sign_up
from tests.support.plans import move_to

TABLES = (
    "projects",
    "api_keys",
    "provider_credentials",
    "management_keys",
    "memberships",
    "users",
    "organizations",
    "routing_configs",
    "routing_config_versions",
)


@pytest.fixture(autouse=True)
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.WARNING)
    yield
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not logged, [r.getMessage() for r in logged]


@pytest.fixture
async def project_id(client: httpx.AsyncClient, org: Org, rt: Services) -> str:
    await move_to(rt, org.id, "team")
    r = await client.post("/manage/v1/projects", json={"name": "p"}, headers=org.headers)
    assert r.status_code == 201
    pid: str = r.json()["data"]["id"]
    return pid


@pytest.fixture
async def config_id(client: httpx.AsyncClient, org: Org, project_id: str) -> AsyncIterator[str]:
    r = await client.post(
        "/manage/v1/routing-configs",
        json={"project_id": project_id, "slug": "main", "strategy": "single", "model": "openai/gpt-4o"},
        headers=org.headers,
    )
    assert r.status_code == 201, r.text
    yield r.json()["data"]["id"]


async def _counts(rt: Services) -> dict[str, int]:
    async with rt.db.session() as session:
        return {
            t: int((await session.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one()) for t in TABLES
        }


def _refused(r: httpx.Response, status: int, code: str, param: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    assert set(error) <= {"type", "code", "message", "param"}
    assert error["code"] == code and isinstance(error["message"], str) and error["type"]
    if param is not None:
        assert error["param"] == param
    return error


NUL_BODIES = [
    ("POST", "/projects", {"name": "a\x00b"}, "name"),
    ("POST", "/projects", {"name": "ok", "description": "\x00"}, "description"),
    ("POST", "/api-keys", {"project_id": "{project}", "name": "ci\x00"}, "name"),
    ("POST", "/api-keys", {"project_id": "proj_\x00"}, "project_id"),
    ("POST", "/providers", {"vendor": "openai", "name": "o\x00", "api_key": "sk-1234567890"}, "name"),
    ("POST", "/providers", {"vendor": "openai", "name": "o", "api_key": "sk-12345\x0067890"}, "api_key"),
    ("POST", "/providers", {"vendor": "open\x00ai", "name": "o", "api_key": "sk-1234567890"}, "vendor"),
    ("POST", "/management-keys", {"name": "deploy\x00"}, "name"),
    ("POST", "/members", {"email": "dev\x00@acme.test"}, "email"),
    (
        "POST",
        "/routing-configs",
        {"project_id": "{project}", "slug": "s", "strategy": "single", "model": "openai/gpt\x00"},
        "model",
    ),
    (
        "POST",
        "/routing-configs",
        {
            "project_id": "{project}",
            "slug": "f",
            "strategy": "fallback",
            "targets": [{"model": "openai/\x00"}],
        },
        "targets",
    ),
    ("POST", "/routing-configs", {"project_id": "{project}", "slug": "s\x00", "strategy": "single"}, "slug"),
    ("PATCH", "/projects/{project}", {"name": "renamed\x00"}, "name"),
    ("PATCH", "/projects/{project}", {"description": "\x00"}, "description"),
    ("POST", "/billing/checkout", {"plan": "pro\x00"}, "plan"),
]


@pytest.mark.parametrize(("method", "path", "body", "param"), NUL_BODIES)
async def test_nul_in_any_body_string_is_422_and_stores_nothing(
    client: httpx.AsyncClient,
    org: Org,
    rt: Services,
    project_id: str,
    method: str,
    path: str,
    body: dict[str, Any],
    param: str,
) -> None:
    body = {k: (project_id if v == "{project}" else v) for k, v in body.items()}
    before = await _counts(rt)

    r = await client.request(
        method, "/manage/v1" + path.replace("{project}", project_id), json=body, headers=org.headers
    )

    error = _refused(r, 422, "invalid_characters", param)
    assert error["type"] == "invalid_request_error"
    assert await _counts(rt) == before
    project = (await client.get(f"/manage/v1/projects/{project_id}", headers=org.headers)).json()["data"]
    assert (project["name"], project["description"]) == ("p", None)


@pytest.mark.parametrize(
    "path",
    [
        "/projects/proj_%00x",
        "/api-keys/key_%00",
        "/providers/prov_%00",
        "/management-keys/mk_%00",
        "/members/mem_%00",
        "/routing-configs/rc_%00",
        "/routing-configs/rc_%00/versions",
        "/routing-configs/rc_%00/versions/1",
    ],
)
async def test_nul_in_a_path_id_is_404(client: httpx.AsyncClient, org: Org, rt: Services, path: str) -> None:
    before = await _counts(rt)
    for method in ("GET", "PATCH", "DELETE"):
        kwargs: dict[str, Any] = {"json": {"name": "x"}} if method == "PATCH" else {}
        r = await client.request(method, "/manage/v1" + path, headers=org.headers, **kwargs)
        if r.status_code == 405:
            continue
        assert _refused(r, 404, "not_found")["type"] == "not_found_error"
    assert await _counts(rt) == before


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/projects?cursor=proj_%00", "cursor"),
        ("/api-keys?project_id=proj_%00", "project_id"),
        ("/routing-configs?project_id=%00&limit=5", "project_id"),
        ("/providers?limit=10&cursor=%00", "cursor"),
    ],
)
async def test_nul_in_a_query_parameter_is_422(
    client: httpx.AsyncClient, org: Org, path: str, param: str
) -> None:
    r = await client.get("/manage/v1" + path, headers=org.headers)
    _refused(r, 422, "invalid_characters", param)


async def test_the_database_helpers_refuse_nul_without_asking_the_database(rt: Services, org: Org) -> None:
    # the layer under every caller (dashboard forms, MCP, services), not only the HTTP guard
    async with rt.db.session() as session:
        with pytest.raises(NotFound):
            await get_owned(session, Project, org.id, "proj_\x00", label="project")
        with pytest.raises(ValidationFailed) as refused:
            await list_owned(session, Project, org.id, PageRequest(cursor="proj_\x00"))
    assert refused.value.code == "invalid_cursor"


async def test_routing_versions_past_postgres_integer_are_refused(
    client: httpx.AsyncClient, org: Org, rt: Services, config_id: str
) -> None:
    base = f"/manage/v1/routing-configs/{config_id}"
    _refused(
        await client.get(f"{base}/versions/2147483648", headers=org.headers), 422, "invalid_field", "version"
    )
    _refused(
        await client.get(f"{base}/versions/{10**30}", headers=org.headers), 422, "invalid_field", "version"
    )
    _refused(await client.get(f"{base}/versions/2147483647", headers=org.headers), 404, "version_not_found")
    before = await _counts(rt)
    for version in (2147483648, 2**63):
        r = await client.post(f"{base}/rollback", json={"version": version}, headers=org.headers)
        _refused(r, 422, "invalid_field", "version")
    r = await client.post(f"{base}/rollback", json={"version": 2147483647}, headers=org.headers)
    _refused(r, 404, "version_not_found")
    assert await _counts(rt) == before
    assert (await client.get(base, headers=org.headers)).json()["data"]["version"] == 1


async def test_a_base_url_longer_than_its_column_is_422(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    before = await _counts(rt)
    r = await client.post(
        "/manage/v1/providers",
        json={
            "vendor": "openai",
            "name": "o",
            "api_key": "sk-1234567890",
            "base_url": "https://8.8.8.8/" + "a" * 600,
        },
        headers=org.headers,
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["param"] == "base_url"
    assert await _counts(rt) == before


async def test_an_oversize_chunked_body_is_413(client: httpx.AsyncClient, org: Org, rt: Services) -> None:
    max_bytes = rt.settings.max_body_bytes

    async def chunks(total: int) -> AsyncIterator[bytes]:
        yield b'{"name": "'
        sent = 0
        while sent < total:
            yield b"x" * 65536
            sent += 65536
        yield b'"}'

    headers = {**org.headers, "content-type": "application/json"}
    r = await client.post("/manage/v1/projects", content=chunks(max_bytes + 1), headers=headers)
    assert "content-length" not in r.request.headers
    _refused(r, 413, "body_too_large")
    assert (await _counts(rt))["projects"] == 0

    async def small() -> AsyncIterator[bytes]:
        yield b'{"name": '
        yield b'"chunked"}'

    ok = await client.post("/manage/v1/projects", content=small(), headers=headers)
    assert ok.status_code == 201 and ok.json()["data"]["name"] == "chunked"


async def test_dashboard_login_with_nul_answers_the_form(app: Any, rt: Services, org: Org) -> None:
    async with browser(app) as client:
        for fields in (
            {"email": "owner\x00@acme.test", "password": "x"},
            {"email": org.owner_email, "password": "a\x00"},
        ):
            r = await post_form(client, "/login", "/login", fields)
            assert r.status_code == 422
            assert "NUL characters" in r.text
            assert SESSION_COOKIE not in r.headers.get("set-cookie", "")


async def test_dashboard_signup_with_nul_answers_the_form_and_creates_nothing(app: Any, rt: Services) -> None:
    before = await _counts(rt)
    async with browser(app) as client:
        for fields in (
            {"org_name": "Acme\x00", "email": "new@acme.test", "password": "correct horse battery"},
            {"org_name": "Acme", "email": "new\x00@acme.test", "password": "correct horse battery"},
            {"org_name": "Acme", "email": "new@acme.test", "password": "correct horse\x00battery"},
        ):
            r = await post_form(client, "/signup", "/signup", fields)
            assert r.status_code == 422
            assert "NUL characters" in r.text
    assert await _counts(rt) == before


async def test_dashboard_resource_forms_with_nul_answer_the_page(app: Any, rt: Services) -> None:
    async with browser(app) as client:
        assert (await sign_up(client)).status_code == 303
        before = await _counts(rt)
        for page, action, fields in (
            ("/projects", "/projects/create", {"name": "p\x00"}),
            (
                "/providers",
                "/providers/create",
                {"vendor": "openai", "name": "o", "api_key": "sk-\x0012345678"},
            ),
            ("/management-keys", "/management-keys/create", {"name": "k\x00", "role": "member"}),
        ):
            r = await post_form(client, page, action, fields)
            assert r.status_code == 422, (action, r.status_code)
            assert "must not contain NUL characters" in r.text
    assert await _counts(rt) == before
