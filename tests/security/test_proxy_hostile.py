"""Hostile bodies on `/v1`: each is refused before admission, in the contract's shape.

One server per database serves the whole matrix (a server per case would cost a
second each); every case checks the status, the error shape and code, that
the plan's meter did not move and that no upstream was called.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import openai
import pytest

from modelux_server.config import Settings
from tests.proxy.conftest import Tenant, make_tenant
from tests.support import databases
from tests.support.fake_upstream import FakeUpstream
from tests.support.live_server import LiveServer

MSG = [{"role": "user", "content": "hi"}]


@dataclass
class Gateway:
    live: LiveServer
    upstream: FakeUpstream
    tenant: Tenant

    def used(self) -> int:
        return int(self.tenant.billing()["meters"]["monthly_requests"]["used"])

    def post(self, path: str, body: Any) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(
            f"{self.tenant.base}/v1/{path}",
            content=raw,
            headers={"Authorization": f"Bearer {self.tenant.key}", "content-type": "application/json"},
            timeout=10,
        )


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def gateway(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
    fake: FakeUpstream,
) -> Iterator[Gateway]:
    folder = tmp_path_factory.mktemp("hostile")
    if request.param == "sqlite":
        url = databases.sqlite_copy(sqlite_template, folder)
    else:
        url = request.getfixturevalue("pg_url")
        databases.truncate_pg(url)
    settings = Settings(
        database_url=url,
        data_dir=folder / "data",
        secret_key="test-secret-key",
        public_url="https://modelux.test",
        workers_enabled=False,
        egress_allow="127.0.0.0/8",  # the fake upstream listens on loopback
        # one module-wide key reads the meter twice per case, far past 60 a minute;
        # per-key rate limits are under test in tests/ratelimit and the rate-limit tests
        rate_limit_management_key_per_minute=0,
    )
    with LiveServer(settings) as live:
        yield Gateway(live, fake, make_tenant(live, fake))


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-fake", "messages": MSG, **fields}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


BAD_MODEL = (400, "invalid_model")
NO_MODEL = (422, "missing_field")
NOT_JSON = (400, "invalid_json")
TOO_DEEP = (400, "body_too_deep")
WRONG = (422, "invalid_field")

CASES = [
    # the model name
    ("model-crlf", "chat/completions", chat(model="gpt-fake\r\nX-Injected: yes"), BAD_MODEL),
    ("model-lf", "chat/completions", chat(model="openai/gpt\nfake"), BAD_MODEL),
    ("model-nul", "chat/completions", chat(model="gpt-fake\x00"), BAD_MODEL),
    ("model-tab", "chat/completions", chat(model="gpt-\tfake"), BAD_MODEL),
    ("model-line-separator", "chat/completions", chat(model="gpt-fake\u2028x"), BAD_MODEL),
    ("model-bidi-override", "chat/completions", chat(model="gpt-\u202efake"), BAD_MODEL),
    ("model-lone-surrogate", "chat/completions", b'{"model": "gpt-\\ud800", "messages": []}', BAD_MODEL),
    ("model-too-long", "chat/completions", chat(model="openai/" + "m" * 300), BAD_MODEL),
    ("model-too-long-non-ascii", "chat/completions", chat(model="openai/" + "м" * 250), BAD_MODEL),
    ("slug-crlf", "chat/completions", chat(model="@cheap\r\nx: y"), BAD_MODEL),
    ("model-list", "chat/completions", chat(model=["gpt-fake"]), NO_MODEL),
    ("model-number", "chat/completions", chat(model=4), NO_MODEL),
    ("model-null", "chat/completions", chat(model=None), NO_MODEL),
    ("model-empty", "chat/completions", chat(model=""), NO_MODEL),
    (
        "vendor-without-credential",
        "chat/completions",
        chat(model="openai_compatible/модель"),
        (422, "no_provider_credential"),
    ),
    # the body as a whole
    ("empty-body", "chat/completions", b"", NOT_JSON),
    ("body-null", "chat/completions", b"null", NOT_JSON),
    ("body-list", "chat/completions", b"[]", NOT_JSON),
    ("body-string", "chat/completions", b'"hi"', NOT_JSON),
    (
        "not-utf8",
        "chat/completions",
        b'{"model": "gpt-fake", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
        NOT_JSON,
    ),
    ("truncated", "chat/completions", b'{"model": "gpt-fake", "messages": [', NOT_JSON),
    (
        "integer-of-5000-digits",
        "chat/completions",
        b'{"model": "gpt-fake", "messages": [], "max_tokens": 1' + b"0" * 5000 + b"}",
        NOT_JSON,
    ),
    (
        "nested-1100",
        "chat/completions",
        b'{"model": "gpt-fake", "messages": ' + nested(1100).encode() + b"}",
        TOO_DEEP,
    ),
    (
        "nested-300-in-content",
        "chat/completions",
        b'{"model": "gpt-fake", "messages": [{"role": "user", "content": ' + nested(300).encode() + b"}]}",
        TOO_DEEP,
    ),
    ("nested-129-unknown-field", "chat/completions", chat(extra=json.loads(nested(128))), TOO_DEEP),
    (
        "nested-1100-embeddings",
        "embeddings",
        b'{"model": "text-embedding-fake", "input": ' + nested(1100).encode() + b"}",
        TOO_DEEP,
    ),
    # messages
    ("messages-missing", "chat/completions", {"model": "gpt-fake"}, (422, "missing_field")),
    ("messages-string", "chat/completions", chat(messages="hi"), (422, "missing_field")),
    ("messages-object", "chat/completions", chat(messages={"role": "user"}), (422, "missing_field")),
    ("messages-empty", "chat/completions", chat(messages=[]), (422, "missing_field")),
    ("message-string", "chat/completions", chat(messages=["hi"]), WRONG),
    ("message-without-role", "chat/completions", chat(messages=[{"content": "hi"}]), WRONG),
    ("message-role-number", "chat/completions", chat(messages=[{"role": 1, "content": "hi"}]), WRONG),
    ("content-number", "chat/completions", chat(messages=[{"role": "user", "content": 5}]), WRONG),
    ("content-list-of-numbers", "chat/completions", chat(messages=[{"role": "user", "content": [1]}]), WRONG),
    ("content-object", "chat/completions", chat(messages=[{"role": "user", "content": {"a": 1}}]), WRONG),
    # parameters of the wrong JSON type
    ("stream-yes", "chat/completions", chat(stream="yes"), WRONG),
    ("stream-one", "chat/completions", chat(stream=1), WRONG),
    ("stream-options-string", "chat/completions", chat(stream=True, stream_options="usage"), WRONG),
    ("temperature-string", "chat/completions", chat(temperature="hot"), WRONG),
    ("temperature-bool", "chat/completions", chat(temperature=True), WRONG),
    (
        "temperature-nan",
        "chat/completions",
        b'{"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
        WRONG,
    ),
    (
        "temperature-overflow",
        "chat/completions",
        b'{"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}], "temperature": 1e999}',
        WRONG,
    ),
    ("max-tokens-string", "chat/completions", chat(max_tokens="10"), WRONG),
    ("max-tokens-float", "chat/completions", chat(max_tokens=1.5), WRONG),
    ("n-list", "chat/completions", chat(n=[2]), WRONG),
    ("tools-string", "chat/completions", chat(tools="search"), WRONG),
    ("tools-of-numbers", "chat/completions", chat(tools=[1, 2]), WRONG),
    ("tool-choice-number", "chat/completions", chat(tool_choice=5), WRONG),
    ("stop-number", "chat/completions", chat(stop=5), WRONG),
    ("stop-list-of-numbers", "chat/completions", chat(stop=[1]), WRONG),
    ("user-object", "chat/completions", chat(user={"id": 1}), WRONG),
    ("response-format-string", "chat/completions", chat(response_format="json"), WRONG),
    # the same parameters reach the Anthropic translation, which relies on their types
    ("anthropic-temperature-string", "chat/completions", chat(model="claude-fake", temperature="x"), WRONG),
    ("anthropic-n-string", "chat/completions", chat(model="claude-fake", n="2"), WRONG),
    ("anthropic-stop-object", "chat/completions", chat(model="claude-fake", stop={"a": 1}), WRONG),
    # embeddings
    ("input-missing", "embeddings", {"model": "text-embedding-fake"}, (422, "missing_field")),
    ("input-number", "embeddings", {"model": "text-embedding-fake", "input": 5}, WRONG),
    ("input-object", "embeddings", {"model": "text-embedding-fake", "input": {"a": 1}}, WRONG),
    ("input-list-of-nulls", "embeddings", {"model": "text-embedding-fake", "input": [None]}, WRONG),
    (
        "dimensions-string",
        "embeddings",
        {"model": "text-embedding-fake", "input": "a", "dimensions": "4"},
        WRONG,
    ),
    ("embeddings-model-crlf", "embeddings", {"model": "text-embedding-fake\r\n", "input": "a"}, BAD_MODEL),
    ("embeddings-body-null", "embeddings", b"null", NOT_JSON),
]


@pytest.mark.parametrize(("path", "body", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_hostile_body_is_refused_before_admission_in_the_contract_shape(
    gateway: Gateway, path: str, body: Any, expected: tuple[int, str]
) -> None:
    before, calls = gateway.used(), len(gateway.upstream.requests)
    r = gateway.post(path, body)
    assert (r.status_code, r.json()["error"].get("code")) == expected, r.text
    error = r.json()["error"]
    assert set(error) <= {"type", "code", "message", "param"}
    assert error["type"] == "invalid_request_error" and isinstance(error["message"], str) and error["message"]
    assert r.headers["x-modelux-request-id"].startswith("req_")
    assert gateway.used() == before, "a refused request was counted"
    assert len(gateway.upstream.requests) == calls, "a refused request reached the upstream"


def test_the_depth_limit_admits_128_levels(gateway: Gateway) -> None:
    r = gateway.post("chat/completions", chat(extra=json.loads(nested(127))))  # 128 with the body itself
    assert r.status_code == 200, r.text


def test_nul_characters_in_a_message_are_relayed_not_a_failure(gateway: Gateway) -> None:
    r = gateway.post("chat/completions", chat(messages=[{"role": "user", "content": "a\x00b"}], user="u\x00"))
    assert r.status_code == 200, r.text
    assert gateway.upstream.requests[-1]["body"]["messages"][0]["content"] == "a\x00b"


@pytest.mark.parametrize("stream", [False, True])
def test_a_non_latin1_model_name_reaches_the_upstream_and_its_header_is_percent_encoded(
    gateway: Gateway, stream: bool
) -> None:
    before = gateway.used()
    sdk = openai.OpenAI(api_key=gateway.tenant.key, base_url=f"{gateway.tenant.base}/v1", max_retries=0)
    raw = sdk.chat.completions.with_raw_response.create(
        model="openai/модель 50%", messages=MSG, stream=stream
    )
    assert raw.status_code == 200
    encoded = raw.headers["x-modelux-model-used"]
    assert encoded == "%D0%BC%D0%BE%D0%B4%D0%B5%D0%BB%D1%8C 50%25" and unquote(encoded) == "модель 50%"
    assert raw.headers["x-modelux-provider-used"] == "openai"
    answer = raw.parse()
    if stream:
        assert "".join(c.choices[0].delta.content or "" for c in answer if c.choices)
    else:
        assert answer.choices[0].message.content  # type: ignore[union-attr]
    assert gateway.upstream.requests[-1]["body"]["model"] == "модель 50%"
    assert gateway.used() == before + 1


@pytest.mark.parametrize(
    "content",
    [
        [{"type": "image_url", "image_url": {"url": 5}}],
        [{"type": "image_url"}],
        [{"type": "text", "text": "hi"}, {"type": ["text"]}],
    ],
)
def test_content_parts_anthropic_cannot_take_are_refused_not_a_crash(gateway: Gateway, content: Any) -> None:
    r = gateway.post(
        "chat/completions", chat(model="claude-fake", messages=[{"role": "user", "content": content}])
    )
    # refused by the translation as an upstream would refuse it (today relayed as 502
    # with upstream_status 400), never a 500 from inside the adapter
    assert r.status_code in (400, 502), r.text
    error = r.json()["error"]
    assert error["type"] in ("invalid_request_error", "upstream_error")
    assert error.get("upstream_status", 400) == 400


def test_a_system_message_with_a_non_text_part_is_not_a_crash(gateway: Gateway) -> None:
    system = {
        "role": "system",
        "content": [{"type": "text", "text": 5}, {"type": "text", "text": "be brief"}],
    }
    r = gateway.post("chat/completions", chat(model="claude-fake", messages=[system, *MSG]))
    assert r.status_code == 200, r.text
    assert gateway.upstream.requests[-1]["body"]["system"] == "be brief"
