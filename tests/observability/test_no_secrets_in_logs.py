"""No secret reaches the logs: a real `modelux serve` at DEBUG, in JSON, with access logs on.

The test walks an organization's whole life through the doors a customer uses
(the CLI, the management API, the proxy with the official SDK, the dashboard's
forms, an emailed invitation, MCP, /metrics) and creates every kind of secret on
the way. Then it reads everything the server wrote to stderr and looks for each
secret, and for every 12-character piece of one, as it is and as URLs and forms
encode it. The log must also be one JSON object per line, with an access line
for every request the test made.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import subprocess
import time
from collections.abc import Iterable, Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import httpx2
import openai
import pytest
from mcp.client.streamable_http import streamable_http_client

from mcp import Client
from tests.support.fake_upstream import FakeUpstream
from tests.support.serve_process import ServeProcess, free_port, run_cli

WINDOW = 12  # a piece of a secret this long is as good as the secret to a searcher
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Secrets:
    """Every secret the walk creates, with what it is, for the failure message."""

    def __init__(self) -> None:
        self.found: dict[str, str] = {}

    def add(self, what: str, value: str) -> str:
        assert len(value) >= WINDOW, f"{what} is too short to search for: {value!r}"
        self.found[value] = what
        return value


def leaks(log: str, secrets_: dict[str, str]) -> list[str]:
    """What of each secret `log` shows: whole, URL- or form-encoded, or a 12-character piece."""
    found = []
    for value, what in secrets_.items():
        forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
        pieces = {form[i : i + WINDOW] for form in forms for i in range(len(form) - WINDOW + 1)}
        shown = sorted(piece for piece in pieces if piece in log)
        if shown:
            found.append(f"{what}: {shown[:3]}")
    return found


def test_the_check_finds_a_secret_or_a_piece_of_one_in_any_encoding() -> None:
    """The search below can fail: it sees a token in a query string, and a password form-encoded."""
    token = "mlx_inv_" + "Q7x" * 12
    password = "correct horse battery staple"
    known = {token: "invitation token", password: "password"}

    def named(log: str) -> list[str]:
        return [found.split(":")[0] for found in leaks(log, known)]

    assert named('{"path": "/invitations/accept?token=' + token + '"}') == ["invitation token"]
    assert named("password=correct+horse+battery+staple") == ["password"]
    assert named('{"key": "' + token[5:20] + '"}') == ["invitation token"]
    assert named("mlx_inv_...Q7x3 correct hor") == []  # a hint, and pieces shorter than 12


@pytest.fixture
def provider_upstream() -> Iterator[tuple[FakeUpstream, str]]:
    """An upstream that answers only with the provider key: a 200 proves the key was sent."""
    key = "sk-live-" + secrets.token_urlsafe(24)
    fake = FakeUpstream(api_key=key)
    fake.start()
    yield fake, key
    fake.stop()


def cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    out = run_cli(env, cwd, *args, timeout=120)
    assert out.returncode == 0, out.stderr
    return out


def test_a_full_lifecycle_at_debug_leaves_no_secret_in_the_json_log(
    db_url: str, tmp_path: Path, provider_upstream: tuple[FakeUpstream, str]
) -> None:
    upstream, provider_key = provider_upstream
    known = Secrets()
    known.add("provider api key", provider_key)
    env = {
        "MODELUX_DATABASE_URL": db_url,
        "MODELUX_DATA_DIR": str(tmp_path / "data"),
        "MODELUX_SECRET_KEY": known.add("MODELUX_SECRET_KEY", secrets.token_urlsafe(32)),
        "MODELUX_METRICS_TOKEN": known.add("MODELUX_METRICS_TOKEN", secrets.token_urlsafe(24)),
        "MODELUX_EGRESS_ALLOW": "127.0.0.0/8",  # the fake upstream is on loopback
        "MODELUX_LOG_FORMAT": "json",
        "MODELUX_ACCESS_LOG": "true",
        "MODELUX_LOG_LEVEL": "DEBUG",
        "MODELUX_NOTIFICATIONS_POLL_SECONDS": "0.2",
    }
    server = ServeProcess(env, tmp_path)
    server.start()
    ids: list[str] = []  # x-request-id of every answer, each must have its access line
    try:
        _walk(server, env, tmp_path, upstream, known, ids)
    finally:
        server.stop()
    log = server.log_path.read_text()

    records = [json.loads(line) for line in log.splitlines()]  # one JSON object per line
    assert all({"ts", "level", "logger", "message"} <= r.keys() for r in records)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["ts"]) for r in records)
    access = {r["request_id"]: r for r in records if r["logger"] == "modelux.access"}
    assert set(ids) <= access.keys()
    assert all("?" not in r["path"] for r in access.values())
    proxied = [r for r in access.values() if r.get("route") == "/v1/chat/completions" and r["status"] == 200]
    assert proxied and all(r["org_id"].startswith("org_") and r["project_id"] for r in proxied)
    assert leaks(log, known.found) == []
    # kit/logs.py masks what looks like a credential as a last guard; nothing on
    # this walk may have needed it (it would hide a leak from the search above)
    assert "[redacted]" not in log


def _walk(
    server: ServeProcess,
    env: dict[str, str],
    cwd: Path,
    upstream: FakeUpstream,
    known: Secrets,
    ids: list[str],
) -> None:
    def seen(response: httpx.Response) -> httpx.Response:
        ids.append(response.headers["x-request-id"])
        return response

    # the operator bootstraps an organization: the owner's password and a management key
    out = cli(env, cwd, "bootstrap", "--org", "Acme", "--email", "owner@acme.test").stdout
    org_id = re.search(r"org_\w+", out)[0]  # type: ignore[index]
    password = known.add("owner password", re.search(r"password\s+(\S+)", out)[1])  # type: ignore[index]
    mk = known.add("management key", re.search(r"mlx_mk_\w+", out)[0])  # type: ignore[index]
    limits = ["projects=5", "api_keys=10", "provider_credentials=10", "monthly_requests=1000"]
    cli(env, cwd, "admin", "create-enterprise-plan", org_id, *(a for lim in limits for a in ("--limit", lim)))

    # the management API: a project, an API key, provider credentials, another management key
    with httpx.Client(base_url=f"{server.url}/manage/v1", headers={"Authorization": f"Bearer {mk}"}) as api:
        project = seen(api.post("/projects", json={"name": "app"})).json()["data"]["id"]
        created = seen(api.post("/api-keys", json={"project_id": project, "name": "prod"}))
        api_key = known.add("API key", created.json()["data"]["key"])
        r = seen(
            api.post(
                "/providers",
                json={
                    "vendor": "openai",
                    "name": "main",
                    "api_key": _key(known, "provider api key"),
                    "base_url": f"{upstream.url}/v1",
                },
            )
        )
        assert r.status_code == 201, r.text
        # a credential for an upstream that is down: the connection failure is logged
        dead_key = known.add("second provider key", "sk-dead-" + secrets.token_urlsafe(24))
        dead = f"http://127.0.0.1:{free_port()}/v1"
        r = seen(
            api.post(
                "/providers",
                json={"vendor": "anthropic", "name": "down", "api_key": dead_key, "base_url": dead},
            )
        )
        assert r.status_code == 201, r.text
        r = seen(api.post("/management-keys", json={"name": "ci", "role": "admin"}))
        second_mk = known.add("second management key", r.json()["data"]["key"])
        seen(api.delete(f"/management-keys/{r.json()['data']['id']}"))
        # an invitation: its token travels in the emailed link's query string
        r = seen(api.post("/members", json={"email": "dev@acme.test", "role": "member"}))
        assert r.status_code == 201, r.text
        # keys and tokens where they do not belong, and keys that do not exist
        seen(api.get("/projects", params={"token": api_key, "api_key": second_mk}))
        bad_mk = known.add("unknown management key", "mlx_mk_" + secrets.token_urlsafe(32))
        assert seen(api.get("/projects", headers={"Authorization": f"Bearer {bad_mk}"})).status_code == 401
        basic = known.add("basic credentials", secrets.token_urlsafe(18))
        seen(api.get("/projects", headers={"Authorization": f"Basic {basic}"}))

    # the proxy, through the official SDK: the provider key is used upstream
    proxy = openai.OpenAI(api_key=api_key, base_url=f"{server.url}/v1", max_retries=0)
    raw = proxy.chat.completions.with_raw_response.create(
        model="gpt-fake", messages=[{"role": "user", "content": "hi"}]
    )
    ids.append(raw.headers["x-request-id"])
    assert raw.headers["x-modelux-request-id"] == raw.headers["x-request-id"]
    assert upstream.requests[-1]["headers"]["authorization"] == f"Bearer {_key(known, 'provider api key')}"
    stream = proxy.chat.completions.create(
        model="gpt-fake", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    with pytest.raises(openai.APIStatusError):  # the upstream that is down: a 502, and a log line
        proxy.chat.completions.create(
            model="anthropic/claude-fake", messages=[{"role": "user", "content": "x"}]
        )
    bad_key = known.add("unknown API key", "mlx_sk_" + secrets.token_urlsafe(32))
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(api_key=bad_key, base_url=f"{server.url}/v1", max_retries=0).models.list()
    with httpx.Client(base_url=server.url) as plain:
        # a key in the query string (some clients do this) and a management key at the proxy
        seen(plain.get("/v1/models", params={"api_key": api_key}))
        seen(plain.get("/v1/models", headers={"Authorization": f"Bearer {mk}"}))
        scraped = seen(
            plain.get("/metrics", headers={"Authorization": f"Bearer {env['MODELUX_METRICS_TOKEN']}"})
        )
        assert scraped.status_code == 200, scraped.text

    # MCP with the management key: a tool call that carries a provider key in its arguments
    mcp_provider_key = known.add("provider key sent through MCP", "sk-mcp-" + secrets.token_urlsafe(24))
    asyncio.run(_mcp_add_provider(server.url, mk, mcp_provider_key, upstream.url))

    # the dashboard: log in (session cookie, CSRF tokens), then a wrong password
    with httpx.Client(base_url=server.url) as browser:
        page = seen(browser.get("/login"))
        known.add("pre-session cookie", browser.cookies["mlx_pre"])
        csrf = known.add("login CSRF token", TOKEN.search(page.text)[1])  # type: ignore[index]
        r = seen(
            browser.post(
                "/login", data={"email": "owner@acme.test", "password": password, "csrf_token": csrf}
            )
        )
        assert r.status_code == 303, r.text
        known.add("owner's session cookie", browser.cookies["mlx_session"])
        page = seen(browser.get("/settings/billing"))
        known.add("session CSRF token", TOKEN.search(page.text)[1])  # type: ignore[index]
        seen(browser.get("/settings/billing", params={"checkout": "success", "session_id": "cs_" + "x" * 24}))
    with httpx.Client(base_url=server.url) as stranger:
        csrf = TOKEN.search(seen(stranger.get("/login")).text)[1]  # type: ignore[index]
        wrong = known.add("mistyped password", password[:-2] + "zz")
        r = seen(
            stranger.post("/login", data={"email": "owner@acme.test", "password": wrong, "csrf_token": csrf})
        )
        assert r.status_code == 401

    # the invited member opens the emailed link and joins with a password of their own
    link = _emailed_link(Path(env["MODELUX_DATA_DIR"]) / "outbox", "dev@acme.test")
    invitation = known.add("invitation token", re.search(r"mlx_inv_\w+", link)[0])  # type: ignore[index]
    with httpx.Client(base_url=server.url) as invitee:
        page = seen(invitee.get("/invitations/accept", params={"token": invitation}))
        assert page.status_code == 200, page.text
        member_password = known.add("member password", "a new member's " + secrets.token_urlsafe(9))
        form = {"token": invitation, "name": "Dev", "password": member_password}
        r = seen(invitee.post("/invitations/accept", data=form | {"csrf_token": TOKEN.search(page.text)[1]}))  # type: ignore[index]
        assert r.status_code == 303, r.text
        known.add("member's session cookie", invitee.cookies["mlx_session"])


def _key(known: Secrets, what: str) -> str:
    return next(value for value, name in known.found.items() if name == what)


async def _mcp_add_provider(base: str, mk: str, provider_key: str, upstream: str) -> None:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {mk}"}, timeout=20) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
    ):
        arguments = {
            "vendor": "openai",
            "name": "via-mcp",
            "api_key": provider_key,
            "base_url": f"{upstream}/v1",
        }
        result = await client.call_tool("add_provider", arguments)
        assert not result.is_error, result.content


def _emailed_link(outbox: Path, to: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        for path in sorted(outbox.glob("*.eml")) if outbox.exists() else []:
            message: Any = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            if message["To"] == to:
                found = re.search(r"https?://\S+/invitations/accept\?token=\S+", _text(message.walk()))
                assert found, "the invitation email holds no link"
                return found[0]
        assert time.monotonic() < deadline, f"no email to {to} in {outbox}"
        time.sleep(0.1)


def _text(parts: Iterable[Any]) -> str:
    return "\n".join(p.get_content() for p in parts if p.get_content_type() == "text/plain")
