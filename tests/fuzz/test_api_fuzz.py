"""The management API, fuzzed from its own /openapi.json by schemathesis.

A real server on loopback (SQLite, and PostgreSQL when it is there) with one
organization on the Team plan and a valid management key. Every `/manage/v1`
operation the document lists is called:

* with the valid key, on generated valid and invalid input: no 5xx, every
  4xx in the contract's error shape, and schemathesis' own checks (status
  codes, content types and bodies as documented, valid input accepted,
  invalid input refused, a request stripped of its key refused);
* with hostile credentials (none, malformed, revoked, a project key, an
  over-long header): 401 in the error shape, the public catalog excepted;
* with another organization's key on this organization's real objects: 404,
  and the objects are still there afterwards.

The run is bounded and reproducible: a fixed seed, derandomized Hypothesis,
a few examples per operation.
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

from modelux_server.app import create_app
from modelux_server.config import Settings
from tests.conftest import make_org
from tests.support import databases
from tests.support.live_server import LiveServer
from tests.support.plans import move_to

SEED = 20261128
# small enough for CI on two busy cores; FUZZ_EXAMPLES=200 for a deeper hunt by hand
EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "12"))
MANAGE = "/manage/v1/"
# Valid by the schema yet refused on meaning, which no schema states: a provider's
# base_url must resolve to a public address (the egress policy); a routing config's
# strategy fields name real models, providers and rule expressions. These keep every
# check but "valid input is accepted".
SEMANTIC = {
    "POST /manage/v1/providers",
    "PATCH /manage/v1/providers/{provider_id}",
    "POST /manage/v1/routing-configs",
    "PATCH /manage/v1/routing-configs/{config_id}",
    # a budget's scope_id is required by its scope and must name a live project or key;
    # amount_usd has at most 6 decimals; thresholds are ascending
    "POST /manage/v1/budgets",
    "PATCH /manage/v1/budgets/{budget_id}",
    # a key's expires_at must be in the future (the aimed call sends a future one: _aimed)
    "POST /manage/v1/api-keys",
    "PATCH /manage/v1/api-keys/{key_id}",
}
# what the aimed call sends as a key's expiry: valid by the schema and by meaning
FUTURE = "2099-01-01T00:00:00Z"


@dataclass
class Tenant:
    org_id: str
    key: str
    objects: dict[str, str]  # path parameter name -> a real id of this organization's


@dataclass
class Fuzzed:
    server: LiveServer
    acme: Tenant
    globex: Tenant
    project_key: str
    revoked_key: str

    def get(self, path: str, key: str) -> httpx.Response:
        return httpx.get(self.server.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=30)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzzed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[Fuzzed]:
    folder = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        url = databases.sqlite_copy(sqlite_template, folder)
    else:
        url = request.getfixturevalue("pg_url")
        databases.truncate_pg(url)
    settings = Settings(
        database_url=url,
        data_dir=folder / "data",
        secret_key="fuzz-secret-key",
        public_url="https://modelux.test",
        workers_enabled=False,
        # thousands of calls with one key in a few minutes: the limit is not under test here
        rate_limit_management_key_per_minute=0,
    )
    server = LiveServer(settings).start()
    try:
        yield _bootstrap(server)
    finally:
        server.stop()


def _bootstrap(server: LiveServer) -> Fuzzed:
    acme = server.call(make_org(server.runtime, "Acme", "owner@acme.test"))
    globex = server.call(make_org(server.runtime, "Globex", "owner@globex.test"))
    server.call(move_to(server.runtime, acme.id, "team"))
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {acme.key}"}, timeout=30) as c:
        project = _created(c.post("/manage/v1/projects", json={"name": "fuzz"}))
        api_key = _created(c.post("/manage/v1/api-keys", json={"project_id": project["id"], "name": "k"}))
        provider = _created(
            c.post(
                "/manage/v1/providers", json={"vendor": "openai", "name": "fuzz", "api_key": "sk-fuzz-1234"}
            )
        )
        config = _created(
            c.post(
                "/manage/v1/routing-configs",
                json={
                    "project_id": project["id"],
                    "slug": "fuzz",
                    "strategy": "single",
                    "model": "openai/gpt-4o-mini",
                },
            )
        )
        member = c.get("/manage/v1/members").json()["data"][0]
        invitation = _created(c.post("/manage/v1/members", json={"email": "new@acme.test", "role": "member"}))
        spare = _created(c.post("/manage/v1/management-keys", json={"name": "spare", "role": "member"}))
        budget = _created(
            c.post(
                "/manage/v1/budgets",
                json={
                    "name": "fuzz",
                    "scope": "project",
                    "scope_id": project["id"],
                    "amount_usd": 50,
                    "period": "daily",
                },
            )
        )
        revoked = _created(c.post("/manage/v1/management-keys", json={"name": "revoked", "role": "admin"}))
        assert c.delete(f"/manage/v1/management-keys/{revoked['id']}").status_code == 200
    objects = {
        "project_id": project["id"],
        "key_id": api_key["id"],
        "provider_id": provider["id"],
        "config_id": config["id"],
        "version": "1",
        "member_id": member["id"],
        "invitation_id": invitation["id"],
        "management_key_id": spare["id"],
        "budget_id": budget["id"],
    }
    return Fuzzed(
        server=server,
        acme=Tenant(acme.id, acme.key, objects),
        globex=Tenant(globex.id, globex.key, {}),
        project_key=api_key["key"],
        revoked_key=revoked["key"],
    )


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _document() -> dict[str, Any]:
    """What /openapi.json serves, built at import time: schemathesis makes one test per operation
    at collection, before any server runs. `test_the_fuzzed_document_is_the_served_one` keeps the
    two equal."""
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{folder}/schema.db",
            data_dir=Path(folder),
            secret_key="fuzz-secret-key",
            workers_enabled=False,
        )
        return create_app(settings).openapi()


DOCUMENT = _document()


PHASES = ("examples", "coverage", "fuzzing", "stateful")


def _schema(mode: str, examples: int, phases: tuple[str, ...]) -> Any:
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {
                "mode": mode,
                "max-examples": examples,
                "deterministic": True,
                "database": "none",
                # the tests send the credential themselves
                "with-security-parameters": False,
                # unknown query parameters are ignored, as by most HTTP APIs: not a finding
                "allow-extra-parameters": False,
            },
            "phases": {
                phase: {"enabled": phase in phases}
                for phase in ("examples", "coverage", "fuzzing", "stateful")
            },
            # valid input may still meet a plan limit (402, CONTRACT.md 3.1): an answer, not a refusal
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "401", "402", "403", "404", "409", "429"],
                }
            },
        }
    )
    return schemathesis.openapi.from_dict(DOCUMENT, config=config).include(path_regex=f"^{MANAGE}")


# Random valid and invalid input, on both databases.
fuzzing = _schema("all", EXAMPLES_PER_OPERATION, ("examples", "fuzzing"))
# Schemathesis' deterministic boundary cases (lengths and bounds +-1, missing and mistyped
# fields); built at collection, so run on one database: PostgreSQL, the stricter one.
boundaries = _schema("all", EXAMPLES_PER_OPERATION, ("coverage",))
# Valid input only, so that the credential is the one thing wrong; the database barely matters.
hostile = _schema("positive", 3, ("fuzzing",))
ON_POSTGRES = pytest.mark.parametrize("fuzzed", ["postgres"], indirect=True)
ON_SQLITE = pytest.mark.parametrize("fuzzed", ["sqlite"], indirect=True)


def error_shape(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    """Every 4xx carries {"error": {"type", "code", "message"}}, all non-empty strings."""
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
        error = body["error"]
        for field in ("type", "code", "message"):
            assert isinstance(error.get(field), str) and error[field], (field, body)
    return None


def test_the_fuzzed_document_is_the_served_one(fuzzed: Fuzzed) -> None:
    served = httpx.get(fuzzed.server.url + "/openapi.json", timeout=30)
    assert served.status_code == 200
    assert served.json() == DOCUMENT
    assert any(path.startswith(MANAGE) for path in DOCUMENT["paths"])


def call_with_a_valid_key(case: schemathesis.Case, fuzzed: Fuzzed) -> None:
    """The generated request, then the same aimed at this organization's real objects: a
    random id only ever meets a 404, a real one reaches the update and rollback rules."""
    headers = {"Authorization": f"Bearer {fuzzed.acme.key}"}
    excluded = [positive_data_acceptance] if case.operation.label in SEMANTIC else []
    case.call_and_validate(
        base_url=fuzzed.server.url, headers=headers, additional_checks=[error_shape], excluded_checks=excluded
    )
    aimed = _aimed(case, fuzzed)
    if aimed is not None:
        aimed.call_and_validate(base_url=fuzzed.server.url, headers=headers, additional_checks=[error_shape])


def _aimed(case: schemathesis.Case, fuzzed: Fuzzed) -> schemathesis.Case | None:
    """`case` with its path ids and body `project_id` replaced by real ones, or None when it
    names no object. Not for DELETE: the objects must outlive the run. Without the
    Idempotency-Key, which the first call has already spent on another request."""
    if case.method == "DELETE":
        return None
    ids = _object_ids(fuzzed, case.path)
    path_parameters = {name: ids[name] for name in case.path_parameters or {}}
    body = case.body
    if isinstance(body, dict) and "project_id" in body:
        body = {**body, "project_id": ids["project_id"]}
    if isinstance(body, dict) and isinstance(body.get("expires_at"), str):
        body = {**body, "expires_at": FUTURE}
    if not path_parameters and body is case.body:
        return None
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "idempotency-key"}
    return case.operation.Case(
        path_parameters=path_parameters,
        headers=headers,
        query=case.query,
        body=body,
        media_type=case.media_type,
    )


@fuzzing.parametrize()
def test_every_operation_with_a_valid_key_answers_within_the_contract(
    case: schemathesis.Case, fuzzed: Fuzzed
) -> None:
    call_with_a_valid_key(case, fuzzed)


@ON_POSTGRES
@boundaries.parametrize()
def test_every_operation_at_its_boundaries_answers_within_the_contract(
    case: schemathesis.Case, fuzzed: Fuzzed
) -> None:
    call_with_a_valid_key(case, fuzzed)


PUBLIC = {"GET /manage/v1/plans"}


def hostile_credentials(fuzzed: Fuzzed) -> dict[str, str | None]:
    """Authorization header values that open nothing: name -> value (None: no header)."""
    acme = fuzzed.acme.key
    return {
        "missing": None,
        "empty bearer": "Bearer ",
        "another scheme": "Basic " + base64.b64encode(b"owner@acme.test:password").decode(),
        "a key without its scheme": acme,
        "a truncated key": f"Bearer {acme[:-1]}",
        "an unknown key": "Bearer mlx_mk_" + "0" * 43,
        "a revoked key": f"Bearer {fuzzed.revoked_key}",
        "a project key": f"Bearer {fuzzed.project_key}",
        "a latin-1 key": "Bearer mlx_mk_\u00e9\u00e8\u00ff",
        "a very long key": "Bearer mlx_mk_" + "A" * 8_000,
    }


@ON_SQLITE
@hostile.parametrize()
def test_every_operation_refuses_a_hostile_credential(case: schemathesis.Case, fuzzed: Fuzzed) -> None:
    for name, value in hostile_credentials(fuzzed).items():
        headers = {} if value is None else {"Authorization": value}
        response = case.call(base_url=fuzzed.server.url, headers=headers)
        if case.operation.label in PUBLIC:
            assert response.status_code == 200, (name, response.text)
            continue
        assert response.status_code == 401, (name, response.status_code, response.text[:500])
        error_shape(None, response, case)
        assert response.json()["error"]["type"] == "authentication_error", name
        if value and len(value) > len("Bearer mlx_mk_"):
            assert value.split()[-1] not in response.text, f"{name} is echoed back"


# Another organization's key, on this organization's real objects.
def _object_ids(fuzzed: Fuzzed, path: str) -> dict[str, str]:
    ids = fuzzed.acme.objects
    resource = path.removeprefix(MANAGE).split("/", 1)[0]
    key_id = {"api-keys": ids["key_id"], "management-keys": ids["management_key_id"]}.get(resource, "")
    return {**ids, "key_id": key_id}


def _minimal_body(op: dict[str, Any]) -> dict[str, Any] | None:
    """The required fields of an operation's body, each with the least valid value."""
    if "requestBody" not in op:
        return None
    ref = op["requestBody"]["content"]["application/json"]["schema"].get("$ref", "")
    schema = DOCUMENT["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
    body: dict[str, Any] = {}
    for name in schema.get("required", []):
        prop = schema["properties"][name]
        if prop.get("type") == "integer":
            body[name] = prop.get("minimum", 1)
        else:
            body[name] = (prop.get("enum") or ["x" * max(prop.get("minLength", 1), 1)])[0]
    return body


def test_another_organizations_key_finds_none_of_this_ones_objects(fuzzed: Fuzzed) -> None:
    intruder = {"Authorization": f"Bearer {fuzzed.globex.key}"}
    tried = []
    for path, item in DOCUMENT["paths"].items():
        if not path.startswith(MANAGE) or "{" not in path:
            continue
        url = fuzzed.server.url + path.format(**_object_ids(fuzzed, path))
        for method, op in item.items():
            r = httpx.request(method, url, json=_minimal_body(op), headers=intruder, timeout=30)
            assert r.status_code == 404, (method, path, r.status_code, r.text[:300])
            assert r.json()["error"]["type"] == "not_found_error"
            tried.append(f"{method} {path}")
    assert len(tried) >= 20
    # and nothing the intruder aimed at changed
    for path in [p for p, item in DOCUMENT["paths"].items() if "{" in p and "get" in item]:
        url = path.format(**_object_ids(fuzzed, path))
        r = fuzzed.get(url, fuzzed.acme.key)
        assert r.status_code == 200, (path, r.text[:300])
        data = r.json()["data"]
        assert isinstance(data, list) or (data.get("revoked_at") is None and not data.get("deleted")), path
