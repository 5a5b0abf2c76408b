"""The hostile-input matrix: every management operation and /v1, on SQLite and PostgreSQL.

The operations are read from the app's own OpenAPI document, so an endpoint added
later is probed without anyone remembering to: an operation whose request body has
no entry in ``VALID_BODIES`` fails the suite until it gets one. Each operation is
called with NUL bytes, CR/LF, huge, deeply nested, non-ASCII and lone-surrogate
strings, wrong types and nulls in every body field and path parameter, and with
another tenant's ids. Every answer must be below 500 and, when it is an error, in
the contract's shape; another tenant's objects must answer 404 and stay untouched.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from modelux_server.config import Settings
from tests.conftest import Org, make_org
from tests.support.fake_upstream import FakeUpstream

DEEP = 1100


class Deep:
    """A value nested DEEP levels: spliced into the body as text, since no JSON
    encoder (the test client's included) will write it from Python objects."""

    TEXT = '{"n":' * (DEEP // 2) + "[" * (DEEP // 2) + '"bottom"' + "]" * (DEEP // 2) + "}" * (DEEP // 2)
    MARK = "__deep_value__"


def _encode(body: dict[str, Any]) -> bytes:
    marked = {k: (Deep.MARK if isinstance(v, Deep) else v) for k, v in body.items()}
    return json.dumps(marked).replace(json.dumps(Deep.MARK), Deep.TEXT).encode()


def _deep_raw(depth: int = DEEP) -> bytes:
    return b'{"a":' + b"[" * depth + b"1" + b"]" * depth + b"}"


HOSTILE_STRINGS: dict[str, str] = {
    "nul": "a\x00b",
    "crlf": "a\r\nX-Injected: 1",
    "huge": "x" * 100_000,
    "non_ascii": "модель-名前-🙂",
    "control": "\x01\x07\x1b[31m",
    "path_like": "../../etc/passwd",
    "sql_like": "'; DROP TABLE projects; --",
    "empty": "",
    "spaces": "   ",
}
HOSTILE_VALUES: dict[str, Any] = {
    **HOSTILE_STRINGS,
    "null": None,
    "int": 7,
    "huge_int": 2**70,
    "negative": -(2**40),
    "float": 1.5,
    "bool": True,
    "list": ["a", 1],
    "object": {"a": 1},
    "deep": Deep(),
}
# Raw JSON texts that a Python dict cannot carry.
HOSTILE_RAW_BODIES: dict[str, bytes] = {
    "deep_1100": _deep_raw(),
    "lone_surrogate": b'{"name": "\\ud800x"}',
    "nul_escape": b'{"name": "a\\u0000b"}',
    "not_utf8": b'{"name": "\xff\xfe"}',
    "array": b"[1, 2]",
    "null": b"null",
    "string": b'"x"',
    "empty": b"",
    "truncated": b'{"name": ',
    "huge_number": b'{"name": 1' + b"0" * 5000 + b"}",
}
HOSTILE_PATH_VALUES = [
    "a%00b",
    "a%0D%0AX-Injected:%201",
    "x" * 3000,
    "%D0%BC%D0%BE%D0%B4%D0%B5%D0%BB%D1%8C",
    "%ED%A0%80",  # a lone surrogate, percent-encoded
    "..%2F..%2Fetc",
    "2147483648",
    "99999999999999999999999",
    "-1",
    "0",
    "proj_doesnotexist",
]
HOSTILE_QUERIES = [
    {"limit": "a%00"},
    {"limit": "99999999999999999999"},
    {"limit": "-5"},
    {"cursor": "a\x00b"},
    {"cursor": "x" * 3000},
    {"cursor": "!!!not-base64!!!"},
    {"cursor": "модель"},
]


@dataclass
class World:
    """Two tenants: `a` probes, `b` owns the ids that `a` must not reach."""

    a: Org
    b: Org
    ids_a: dict[str, str] = field(default_factory=dict)
    ids_b: dict[str, str] = field(default_factory=dict)


# One valid body per request schema; the matrix breaks one field at a time.
# Values in {braces} are filled from the world's ids.
VALID_BODIES: dict[str, dict[str, Any]] = {
    "CheckoutCreate": {"plan": "pro", "interval": "monthly"},
    "PortalCreate": {"return_url": "https://modelux.test/settings/billing"},
    "ChangePlan": {"plan": "pro", "interval": "monthly"},
    "ProjectCreate": {"name": "app", "description": "d"},
    "ProjectUpdate": {"name": "app2", "description": "d2"},
    "ApiKeyCreate": {"project_id": "{project}", "name": "k"},
    "ApiKeyUpdate": {"name": "k2"},
    "ProviderCreate": {"vendor": "openai", "name": "p", "api_key": "sk-test-1234"},
    "ProviderUpdate": {"name": "p2"},
    "ManagementKeyCreate": {"name": "mk", "role": "member"},
    "MemberCreate": {"email": "new@acme.test", "role": "member"},
    "MemberUpdate": {"role": "member"},
    "RoutingConfigCreate": {
        "project_id": "{project}",
        "slug": "s",
        "strategy": "fallback",
        "targets": [{"model": "openai/gpt-4o", "timeout_ms": 5000}],
    },
    "RoutingConfigUpdate": {"strategy": "single", "model": "openai/gpt-4o-mini"},
    "Rollback": {"version": 1},
    "SalesInquiryCreate": {"seats": 20, "needs": ["sso", "invoicing"], "message": "We need SSO."},
    "BudgetCreate": {
        "name": "b",
        "scope": "project",
        "scope_id": "{project}",
        "amount_usd": 25.5,
        "period": "monthly",
        "action": "block",
        "thresholds": [50, 100],
    },
    "BudgetUpdate": {"name": "b2", "amount_usd": 30, "thresholds": [80]},
}
# path parameter -> the kind of id it names
PARAM_KINDS = {
    "project_id": "project",
    "key_id": "api_key",
    "provider_id": "provider",
    "member_id": "member",
    "config_id": "config",
    "version": "version",
    "invitation_id": "invitation",
    "budget_id": "budget",
}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    params: tuple[str, ...]
    schema: str | None


def _operations(spec: dict[str, Any]) -> list[Operation]:
    found = []
    for path, ops in spec["paths"].items():
        if not path.startswith("/manage/v1"):
            continue
        for method, op in ops.items():
            params = tuple(p["name"] for p in op.get("parameters", []) if p["in"] == "path")
            schema = None
            content = (op.get("requestBody") or {}).get("content", {}).get("application/json", {})
            raw = content.get("schema") or {}
            refs = [raw.get("$ref")] + [a.get("$ref") for a in raw.get("anyOf", [])]
            for ref in refs:
                if ref:
                    schema = ref.rsplit("/", 1)[1]
            found.append(Operation(method.upper(), path, params, schema))
    return found


def _fill(template: Any, ids: dict[str, str]) -> Any:
    if isinstance(template, str) and template.startswith("{") and template.endswith("}"):
        return ids[template[1:-1]]
    if isinstance(template, dict):
        return {k: _fill(v, ids) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, ids) for v in template]
    return template


def _path(op: Operation, ids: dict[str, str], override: dict[str, str] | None = None) -> str:
    path = op.path
    for name in op.params:
        kind = PARAM_KINDS.get(name, "")
        value = (override or {}).get(name, ids.get(kind, "unknown"))
        if kind == "api_key" and "management-keys" in op.path:
            value = (override or {}).get(name, ids["management_key"])
        path = path.replace("{" + name + "}", value)
    return path


def assert_contract(r: httpx.Response, what: str) -> None:
    assert r.status_code < 500, f"{what}: {r.status_code} {r.text[:300]}"
    assert "x-injected" not in r.headers, what
    if r.status_code >= 400:
        try:
            body = r.json()
        except ValueError:
            pytest.fail(f"{what}: {r.status_code} answered with a non-JSON body: {r.text[:200]}")
        error = body.get("error") if isinstance(body, dict) else None
        assert isinstance(error, dict), f"{what}: {body}"
        for key in ("type", "code", "message"):
            assert isinstance(error.get(key), str) and error[key], f"{what}: {body}"


async def _create_resources(client: httpx.AsyncClient, org: Org) -> dict[str, str]:
    h = org.headers
    ids: dict[str, str] = {}
    r = await client.post("/manage/v1/projects", json={"name": "main"}, headers=h)
    ids["project"] = r.json()["data"]["id"]
    r = await client.post("/manage/v1/api-keys", json={"project_id": ids["project"]}, headers=h)
    ids["api_key"] = r.json()["data"]["id"]
    ids["secret_key"] = r.json()["data"]["key"]
    r = await client.post(
        "/manage/v1/providers", json={"vendor": "openai", "name": "o", "api_key": "sk-x-9999"}, headers=h
    )
    assert r.status_code == 201, r.text
    ids["provider"] = r.json()["data"]["id"]
    r = await client.post("/manage/v1/management-keys", json={"name": "ops", "role": "admin"}, headers=h)
    ids["management_key"] = r.json()["data"]["id"]
    r = await client.post(
        "/manage/v1/routing-configs",
        json={"project_id": ids["project"], "slug": "main", "strategy": "single", "model": "openai/gpt-4o"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    ids["config"] = r.json()["data"]["id"]
    ids["version"] = "1"
    members = (await client.get("/manage/v1/members", headers=h)).json()["data"]
    ids["member"] = members[0]["id"]
    r = await client.post("/manage/v1/members", json={"email": "invitee@example.test"}, headers=h)
    assert r.status_code == 201, r.text
    ids["invitation"] = r.json()["data"]["id"]
    # on a key of its own: a budget changes what /v1 admits for the keys it covers
    r = await client.post("/manage/v1/api-keys", json={"project_id": ids["project"], "name": "b"}, headers=h)
    assert r.status_code == 201, r.text
    r = await client.post(
        "/manage/v1/budgets",
        json={
            "name": "main",
            "scope": "api_key",
            "scope_id": r.json()["data"]["id"],
            "amount_usd": 10,
            "period": "daily",
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    ids["budget"] = r.json()["data"]["id"]
    return ids


@pytest.fixture
async def world(client: httpx.AsyncClient, rt: Any) -> World:
    a = await make_org(rt, "Acme", "owner@acme.test")
    b = await make_org(rt, "Rival", "owner@rival.test")
    w = World(a=a, b=b)
    w.ids_a = await _create_resources(client, a)
    w.ids_b = await _create_resources(client, b)
    return w


def test_every_request_schema_and_path_parameter_is_known_to_the_matrix(app: Any) -> None:
    operations = _operations(app.openapi())
    missing = {op.schema for op in operations if op.schema} - set(VALID_BODIES)
    assert not missing, f"add a valid body for {sorted(missing)} to VALID_BODIES"
    unknown = {name for op in operations for name in op.params} - set(PARAM_KINDS)
    assert not unknown, f"add {sorted(unknown)} to PARAM_KINDS (and create one in _create_resources)"


async def test_hostile_body_fields_never_answer_5xx(
    client: httpx.AsyncClient, app: Any, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    probed = 0
    for op in _operations(app.openapi()):
        if op.schema is None:
            continue
        base = _fill(VALID_BODIES[op.schema], world.ids_a)
        path = _path(op, world.ids_a)
        # every field of the valid body, and one unknown field, take each hostile value
        for name in [*base, "unexpected"]:
            for label, value in HOSTILE_VALUES.items():
                r = await client.request(
                    op.method,
                    path,
                    content=_encode({**base, name: value}),
                    headers={**world.a.headers, "content-type": "application/json"},
                )
                assert_contract(r, f"{op.method} {op.path} {name}={label}")
                probed += 1
        for label, raw in HOSTILE_RAW_BODIES.items():
            r = await client.request(
                op.method,
                path,
                content=raw,
                headers={**world.a.headers, "content-type": "application/json"},
            )
            assert_contract(r, f"{op.method} {op.path} raw={label}")
            assert r.status_code in (400, 404, 409, 413, 422), f"{op.method} {op.path} raw={label}: {r.text}"
            probed += 1
    assert probed > 500
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert not errors, [rec.getMessage() for rec in errors]


async def test_hostile_path_and_query_values_never_answer_5xx(
    client: httpx.AsyncClient, app: Any, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    for op in _operations(app.openapi()):
        body = _fill(VALID_BODIES[op.schema], world.ids_a) if op.schema else None
        for name in op.params:
            for value in HOSTILE_PATH_VALUES:
                path = _path(op, world.ids_a, {name: value})
                r = await client.request(op.method, path, json=body, headers=world.a.headers)
                assert_contract(r, f"{op.method} {path[:120]}")
                assert r.status_code in (400, 404, 405, 422), f"{op.method} {path[:120]}: {r.text}"
        if op.method == "GET" and not op.params:
            for query in HOSTILE_QUERIES:
                r = await client.get(op.path, params=query, headers=world.a.headers)
                assert_contract(r, f"GET {op.path} {query!r:.80}")
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert not errors, [rec.getMessage() for rec in errors]


async def test_hostile_credentials_and_headers_never_answer_5xx(
    client: httpx.AsyncClient, app: Any, world: World
) -> None:
    bad_auth = [
        "Bearer mlx_mk_\x00",
        "Bearer " + "x" * 10_000,
        "Bearer mlx_mk_модель",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "",
        f"Bearer {world.ids_a['secret_key']}",  # a project key is not a management key
    ]
    for op in _operations(app.openapi()):
        path = _path(op, world.ids_a)
        if op.path == "/manage/v1/plans":
            continue  # the public catalog needs no credential
        body = _fill(VALID_BODIES[op.schema], world.ids_a) if op.schema else None
        for auth in bad_auth:
            try:
                r = await client.request(op.method, path, json=body, headers={"Authorization": auth})
            except (httpx.LocalProtocolError, UnicodeEncodeError):
                continue  # the client itself refuses to send it: nothing reached us
            assert_contract(r, f"{op.method} {op.path} auth={auth[:20]!r}")
            assert r.status_code == 401, f"{op.method} {op.path}: {r.status_code}"
        if op.method == "GET":
            continue
        # a valid body, so the request reaches the Idempotency-Key check
        for key in ("k\x01", "x" * 300):
            r = await client.request(
                op.method, path, headers={**world.a.headers, "Idempotency-Key": key}, json=body
            )
            assert_contract(r, f"{op.method} {op.path} idempotency-key={key[:10]!r}")
            assert r.status_code == 422, f"{op.method} {op.path} idempotency-key={key[:10]!r}: {r.text}"


async def test_another_tenants_ids_answer_404_and_stay_untouched(
    client: httpx.AsyncClient, app: Any, world: World
) -> None:
    before = {
        kind: (await client.get(f"/manage/v1/{kind}", headers=world.b.headers)).json()["data"]
        for kind in (
            "projects",
            "api-keys",
            "providers",
            "management-keys",
            "members",
            "routing-configs",
            "budgets",
        )
    }
    for op in _operations(app.openapi()):
        if not op.params:
            continue
        body = _fill(VALID_BODIES[op.schema], world.ids_a) if op.schema else None
        path = _path(op, world.ids_b)
        r = await client.request(op.method, path, json=body, headers=world.a.headers)
        assert_contract(r, f"{op.method} {op.path} with the other tenant's ids")
        assert r.status_code == 404, f"{op.method} {path}: {r.status_code} {r.text}"
    # creating things that point at the other tenant's objects is refused too
    r = await client.post(
        "/manage/v1/api-keys", json={"project_id": world.ids_b["project"]}, headers=world.a.headers
    )
    assert r.status_code in (404, 422) and "error" in r.json()
    r = await client.post(
        "/manage/v1/routing-configs",
        json={
            "project_id": world.ids_a["project"],
            "slug": "steal",
            "strategy": "single",
            "model": "openai/gpt-4o",
            "provider_id": world.ids_b["provider"],
        },
        headers=world.a.headers,
    )
    assert r.status_code == 422, r.text
    after = {
        kind: (await client.get(f"/manage/v1/{kind}", headers=world.b.headers)).json()["data"]
        for kind in before
    }
    assert after == before


# ----------------------------------------------------------------------------- /v1


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # the fake upstream listens on loopback, which the egress policy refuses by default
    return settings.model_copy(update={"egress_allow": "127.0.0.0/8"})


V1_VALID: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    "/v1/embeddings": {"model": "text-embedding-3-small", "input": "hi"},
}


async def _meter(client: httpx.AsyncClient, org: Org) -> int:
    billing = (await client.get("/manage/v1/billing", headers=org.headers)).json()["data"]
    return int(billing["meters"]["monthly_requests"]["used"])


async def test_v1_hostile_bodies_never_answer_5xx_and_refusals_are_not_counted(
    client: httpx.AsyncClient, world: World, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    r = await client.patch(
        f"/manage/v1/providers/{world.ids_a['provider']}",
        json={"base_url": f"{upstream.url}/v1", "api_key": "sk-x-9999"},
        headers=world.a.headers,
    )
    assert r.status_code == 200, r.text
    key = {"Authorization": f"Bearer {world.ids_a['secret_key']}"}
    for path, base in V1_VALID.items():
        ok = await client.post(path, json=base, headers=key)
        assert ok.status_code == 200, ok.text
        for name in [*base, "stream", "temperature", "max_tokens", "tools", "user", "n"]:
            for label, value in HOSTILE_VALUES.items():
                before = await _meter(client, world.a)
                r = await client.post(
                    path,
                    content=_encode({**base, name: value}),
                    headers={**key, "content-type": "application/json"},
                )
                assert_contract(r, f"POST {path} {name}={label}")
                if r.status_code >= 400 and r.status_code not in (502, 504):
                    assert await _meter(client, world.a) == before, f"{path} {name}={label} was counted"
        for label, raw in HOSTILE_RAW_BODIES.items():
            before = await _meter(client, world.a)
            r = await client.post(path, content=raw, headers={**key, "content-type": "application/json"})
            assert_contract(r, f"POST {path} raw={label}")
            assert r.status_code in (400, 413, 422), f"{path} raw={label}: {r.status_code} {r.text}"
            assert await _meter(client, world.a) == before
        for model in ("gpt-4o\r\nX-Injected: 1", "gpt\x00", "gpt-4o\t", "m" * 5000):
            before = await _meter(client, world.a)
            r = await client.post(path, content=json.dumps({**base, "model": model}), headers=key)
            assert_contract(r, f"POST {path} model={model[:20]!r}")
            assert r.status_code == 400, f"{path} model={model[:20]!r}: {r.status_code} {r.text}"
            assert await _meter(client, world.a) == before
        # a non-ASCII upstream model name may be real; it reaches headers only encoded
        r = await client.post(path, json={**base, "model": "openai/модель"}, headers=key)
        assert r.status_code == 200, r.text
        assert r.headers["x-modelux-model-used"] == "%D0%BC%D0%BE%D0%B4%D0%B5%D0%BB%D1%8C"
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert not errors, [rec.getMessage() for rec in errors]
