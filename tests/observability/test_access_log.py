"""Request ids, access lines and structured log lines, as a log collector would read them."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI

from modelux_server.app import create_app
from modelux_server.config import Settings
from modelux_server.kit.logs import JsonFormatter, TextFormatter, redact
from tests.conftest import Org, make_org
from tests.proxy.conftest import make_tenant
from tests.support.fake_upstream import FakeUpstream
from tests.support.live_server import LiveServer


class Captured(logging.Handler):
    """Every line the root logger writes, formatted as the server's handler would."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    def access(self, request_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The access line of `request_id`; a stream's is written once it has ended."""
        deadline = time.monotonic() + timeout
        while True:
            found = [
                r for r in self.records() if r["logger"] == "modelux.access" and r["request_id"] == request_id
            ]
            if found or time.monotonic() > deadline:
                assert len(found) == 1, found
                return found[0]
            time.sleep(0.02)


@pytest.fixture
def server_log() -> Iterator[Captured]:
    handler = Captured(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
async def app(sqlite_settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(sqlite_settings)

    @application.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom\nwith a second line")

    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # the app's own 500 answer is what the test looks at, not the exception
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://modelux.test") as c:
        yield c


@pytest.fixture
async def org(app: FastAPI) -> Org:
    return await make_org(app.state.services)


async def test_every_answer_has_a_request_id_and_one_access_line_naming_the_route(
    client: httpx.AsyncClient, org: Org, server_log: Captured
) -> None:
    r = await client.get(
        "/manage/v1/projects/proj_missing", params={"token": "do-not-log-me"}, headers=org.headers
    )
    assert r.status_code == 404
    request_id = r.headers["x-request-id"]
    assert request_id.startswith("req_")

    line = server_log.access(request_id)
    assert line["level"] == "INFO" and line["message"].startswith("GET /manage/v1/projects/proj_missing 404 ")
    assert line["method"] == "GET"
    assert line["route"] == "/manage/v1/projects/{project_id}"
    assert line["path"] == "/manage/v1/projects/proj_missing"
    assert line["status"] == 404
    assert line["org_id"] == org.id and "project_id" not in line
    assert isinstance(line["latency_ms"], float) and line["latency_ms"] > 0
    assert line["client_ip"] == "127.0.0.1"
    assert not any("do-not-log-me" in text for text in server_log.lines)

    # no route matched, and a refusal by the body guard in front of every route
    missing = await client.get("/nowhere")
    assert missing.status_code == 404 and "route" not in server_log.access(missing.headers["x-request-id"])
    refused = await client.post(
        "/manage/v1/projects", content=b"name=x", headers={"content-type": "text/plain"}
    )
    assert refused.status_code == 400
    assert server_log.access(refused.headers["x-request-id"])["status"] == 400


async def test_a_callers_safe_request_id_is_kept_beside_ours_and_an_unsafe_one_is_dropped(
    client: httpx.AsyncClient, server_log: Captured
) -> None:
    kept = await client.get("/healthz", headers={"X-Request-Id": "lb-7f3a9c:01"})
    assert kept.headers["x-request-id"].startswith("req_")
    line = server_log.access(kept.headers["x-request-id"])
    assert line["client_request_id"] == "lb-7f3a9c:01" and line["route"] == "/healthz"

    for unsafe in ("two words", "x" * 65, '"quoted"'):
        dropped = await client.get("/healthz", headers={"X-Request-Id": unsafe})
        assert "client_request_id" not in server_log.access(dropped.headers["x-request-id"])


async def test_an_unhandled_error_is_a_500_and_its_traceback_is_one_json_line_with_the_request_id(
    client: httpx.AsyncClient, server_log: Captured
) -> None:
    r = await client.get("/boom")
    assert r.status_code == 500
    assert r.json() == {
        "error": {
            "type": "api_error",
            "code": "internal_error",
            "message": "Something went wrong on our side.",
        }
    }
    request_id = r.headers["x-request-id"]
    assert server_log.access(request_id)["status"] == 500
    [error] = [r for r in server_log.records() if r["level"] == "ERROR"]
    assert error["request_id"] == request_id and error["route"] == "/boom"
    assert error["message"] == "unhandled error on GET /boom"
    assert 'raise RuntimeError("kaboom\\nwith a second line")' in error["exc"]
    assert error["exc"].endswith("RuntimeError: kaboom\nwith a second line")
    assert all("\n" not in line for line in server_log.lines)


async def test_text_lines_stay_readable_and_name_the_request_and_organization(
    client: httpx.AsyncClient, org: Org
) -> None:
    handler = Captured(TextFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        r = await client.get("/manage/v1/projects", headers=org.headers)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    [line] = [line for line in handler.lines if " modelux.access: " in line]
    assert line.split(" ", 2)[2].startswith("INFO modelux.access: GET /manage/v1/projects 200 ")
    assert line.endswith(f"[request_id={r.headers['x-request-id']} org_id={org.id}]")


def test_proxy_lines_share_the_proxys_request_id_and_a_stream_is_logged_when_it_ends(
    sqlite_settings: Settings, upstream: FakeUpstream, server_log: Captured
) -> None:
    upstream.configure("breaks-off", cut_after=2)
    with LiveServer(sqlite_settings) as live:
        tenant = make_tenant(live, upstream)
        client = openai.OpenAI(api_key=tenant.key, base_url=f"{live.url}/v1", max_retries=0)
        started = time.monotonic()
        with client.chat.completions.with_streaming_response.create(
            model="openai/drip-0.05", messages=[{"role": "user", "content": "hi"}], stream=True
        ) as streamed:
            request_id = streamed.headers["x-modelux-request-id"]
            assert streamed.headers["x-request-id"] == request_id
            chunks = list(streamed.iter_lines())
        took_ms = (time.monotonic() - started) * 1000
        with pytest.raises(openai.APIError):
            for _ in client.chat.completions.create(
                model="openai/breaks-off", messages=[{"role": "user", "content": "hi"}], stream=True
            ):
                pass

    assert len(chunks) > 5
    line = server_log.access(request_id)
    assert (line["route"], line["status"], line["org_id"], line["project_id"]) == (
        "/v1/chat/completions",
        200,
        tenant.org_id,
        tenant.project_id,
    )
    # written when the last chunk had gone, not when the headers did
    assert line["latency_ms"] >= 0.8 * took_ms - 50
    # a line the proxy writes mid-request names the request and the tenant too
    [broken] = [r for r in server_log.records() if "failed after it started" in r["message"]]
    assert broken["org_id"] == tenant.org_id and broken["project_id"] == tenant.project_id
    assert server_log.access(broken["request_id"])["status"] == 200  # the 200 was out before the break


def test_the_last_guard_masks_what_looks_like_a_credential_and_keeps_json_valid() -> None:
    line = json.dumps(
        {
            "message": "calling redis://app:hunter2-redis@cache:6379/0 "
            "with Bearer mlx_sk_abcdefghij0123456789 "
            'for /invitations/accept?token=mlx_inv_Zyx9876543210abc&next=/ and ?session_id=cs_123"456',
        }
    )
    shown = redact(line)
    assert json.loads(shown)["message"] == (
        "calling redis://app:[redacted]@cache:6379/0 with Bearer mlx_sk_[redacted] "
        'for /invitations/accept?token=[redacted]&next=/ and ?session_id=[redacted]"456'
    )
    plain = "GET /v1/models 200 0.4ms mlx_sk_...abcd"
    assert redact(plain) == plain  # a key's hint is not a key


def test_configure_logging_twice_keeps_one_handler_and_sends_uvicorns_lines_through_it() -> None:
    script = textwrap.dedent(
        """
        import logging
        from modelux_server.config import Settings
        from modelux_server.kit.logs import configure_logging

        settings = Settings(log_format="json", log_level="INFO")
        configure_logging(settings)
        configure_logging(settings)
        logging.getLogger("uvicorn.error").info("from uvicorn")
        logging.getLogger("httpx").info("quiet below WARNING")
        logging.getLogger("modelux.test").warning("two\\nlines")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert [(r["logger"], r["message"]) for r in map(json.loads, lines)] == [
        ("uvicorn.error", "from uvicorn"),
        ("modelux.test", "two\nlines"),
    ]
