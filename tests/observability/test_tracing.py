"""OpenTelemetry traces: a server span per request and a client span per upstream attempt.

Spans go to a real OTLP/HTTP receiver on loopback (tests/support/otlp_receiver.py),
decoded with opentelemetry-proto as a collector would.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import openai
import pytest

from modelux_server.config import Settings
from modelux_server.kit.tracing import start_tracing
from tests.proxy.conftest import make_tenant
from tests.support.fake_upstream import FakeUpstream
from tests.support.live_server import LiveServer
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

SERVER, CLIENT = 2, 3  # SpanKind in the OTLP protocol
ERROR = 2  # Status.code
PROMPT = "tell me about the weather in Lisbon"


def test_a_fallback_request_is_one_server_span_with_a_span_per_upstream_attempt(
    sqlite_settings: Settings, upstream: FakeUpstream
) -> None:
    with OtlpReceiver() as receiver:
        settings = sqlite_settings.model_copy(
            update={"otlp_endpoint": receiver.endpoint, "otel_service_name": "modelux-test"}
        )
        live = LiveServer(settings).start()
        try:
            tenant = make_tenant(live, upstream)
            with tenant.manage() as manage:
                created = manage.post(
                    "/routing-configs",
                    json={
                        "project_id": tenant.project_id,
                        "slug": "safe",
                        "strategy": "fallback",
                        "targets": [{"model": "openai/fail-503"}, {"model": "anthropic/claude-fake"}],
                    },
                )
                assert created.status_code == 201, created.text
            client = openai.OpenAI(api_key=tenant.key, base_url=f"{live.url}/v1", max_retries=0)
            raw = client.chat.completions.with_raw_response.create(
                model="@safe",
                messages=[{"role": "user", "content": PROMPT}],
                extra_query={"note": "query-strings-stay-out"},
            )
            assert raw.headers["x-modelux-provider-used"] == "anthropic"
            request_id = raw.headers["x-modelux-request-id"]
            assert raw.headers["x-request-id"] == request_id
        finally:
            live.stop()  # shutting down exports what is still queued

        spans = receiver.wait_for(lambda found: any(_is_request(s, request_id) for s in found))

    server = next(s for s in spans if _is_request(s, request_id))
    assert server.kind == SERVER
    assert server.name == "POST /v1/chat/completions"
    assert server.service_name == "modelux-test"
    assert server.attributes["http.route"] == "/v1/chat/completions"
    assert server.attributes["url.path"] == "/v1/chat/completions"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["modelux.org_id"] == tenant.org_id
    assert server.attributes["modelux.project_id"] == tenant.project_id

    attempts = sorted(
        (s for s in spans if s.parent_span_id == server.span_id),
        key=lambda s: s.attributes["modelux.attempt"],
    )
    assert [(s.kind, s.trace_id) for s in attempts] == [(CLIENT, server.trace_id)] * 2
    first, second = (s.attributes for s in attempts)
    assert first == {
        "modelux.provider": "openai",
        "gen_ai.request.model": "fail-503",
        "modelux.attempt": 1,
        "modelux.outcome": "503",
        "http.response.status_code": 503,
    }
    assert attempts[0].status_code == ERROR
    assert second == {
        "modelux.provider": "anthropic",
        "gen_ai.request.model": "claude-fake",
        "modelux.attempt": 2,
        "modelux.outcome": "ok",
        "http.response.status_code": 200,
    }
    assert attempts[1].status_code != ERROR

    # management calls are traced by their route template, not their ids
    names = {s.name for s in spans if s.kind == SERVER}
    assert "POST /manage/v1/routing-configs" in names
    # nothing a caller sent beyond the path: no query string, prompt or credential
    everything = repr([(s.name, s.attributes) for s in spans])
    for secret in (tenant.key, tenant.mk, "sk-openai-test-0000", "sk-anthropic-test-0000"):
        assert secret not in everything
    assert "query-strings-stay-out" not in everything and "Lisbon" not in everything
    assert not any(k.startswith("http.request.header") for s in spans for k in s.attributes)


def _is_request(span: ReceivedSpan, request_id: str) -> bool:
    return span.attributes.get("modelux.request_id") == request_id


def test_tracing_is_off_without_an_endpoint_and_its_sdk_is_not_even_imported(
    sqlite_settings: Settings,
) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        import httpx
        from modelux_server.app import create_app
        from modelux_server.config import Settings

        settings = Settings(
            database_url={sqlite_settings.database_url!r},
            data_dir={str(sqlite_settings.data_dir)!r},
            secret_key="x",
            workers_enabled=False,
        )
        app = create_app(settings)

        async def main():
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                    r = await c.post("/v1/chat/completions", json={{}})
                    assert r.status_code == 401, r.text
                assert app.state.services.proxy.executor.tracer is None

        asyncio.run(main())
        # (redis-py imports the metrics SDK for its own use; the span pipeline is ours)
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk.trace")
                     or m.startswith("opentelemetry.exporter")))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_an_endpoint_without_the_packages_warns_and_leaves_tracing_off(
    sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # as if not installed
    settings = sqlite_settings.model_copy(update={"otlp_endpoint": "http://127.0.0.1:4318/v1/traces"})
    assert start_tracing(settings) is None
    assert "pip install 'modelux-server[otel]'" in caplog.text
