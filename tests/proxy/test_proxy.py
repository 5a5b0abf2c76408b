"""The OpenAI-compatible edge through the official SDKs, on both counter backends."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import modelux
import openai
import pytest

from modelux_server.kit.clock import FrozenClock
from tests.proxy.conftest import Tenant, make_tenant
from tests.support.fake_upstream import FakeUpstream
from tests.support.live_server import LiveServer

MSG = [{"role": "user", "content": "hi"}]


def client(t: Tenant, **kw: object) -> openai.OpenAI:
    return openai.OpenAI(api_key=t.key, base_url=f"{t.base}/v1", **kw)  # type: ignore[arg-type]


def test_chat_non_streaming_with_the_openai_sdk(tenant: Tenant) -> None:
    raw = client(tenant).chat.completions.with_raw_response.create(model="gpt-fake", messages=MSG)
    completion = raw.parse()
    assert completion.choices[0].message.content.startswith("Hello from the fake upstream")
    assert raw.headers["x-modelux-request-id"].startswith("req_")
    assert raw.headers["x-modelux-provider-used"] == "openai"
    assert raw.headers["x-modelux-model-used"] == "gpt-fake"
    assert completion.usage is not None and completion.usage.total_tokens > 0


def test_chat_streaming_passes_chunks_through(tenant: Tenant) -> None:
    stream = client(tenant).chat.completions.create(model="openai/drip-0.01", messages=MSG, stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 3
    assert text.startswith("Hello from the fake upstream")


def test_anthropic_both_ways_and_streaming(tenant: Tenant, upstream: FakeUpstream) -> None:
    c = client(tenant)
    done = c.chat.completions.create(
        model="claude-fake", messages=[{"role": "system", "content": "be brief"}, *MSG], max_tokens=50
    )
    assert done.choices[0].message.content
    sent = [r for r in upstream.requests if r["path"] == "/v1/messages"][-1]
    assert sent["body"]["system"] == "be brief" and sent["headers"]["x-api-key"] == "sk-anthropic-test-0000"
    streamed = "".join(
        ch.choices[0].delta.content or ""
        for ch in c.chat.completions.create(model="anthropic/claude-fake", messages=MSG, stream=True)
        if ch.choices
    )
    assert streamed == done.choices[0].message.content


def test_embeddings_and_models(tenant: Tenant) -> None:
    c = client(tenant)
    emb = c.embeddings.create(model="text-embedding-fake", input=["a", "b"])
    assert len(emb.data) == 2 and len(emb.data[0].embedding) > 0
    with tenant.manage() as m:
        m.post(
            "/routing-configs",
            json={
                "project_id": tenant.project_id,
                "slug": "cheap",
                "strategy": "single",
                "model": "openai/gpt-fake",
            },
        )
    # the configs first, then the credentialed vendors' models (tests/proxy/test_surfaces.py)
    assert [m.id for m in c.models.list()][0] == "@cheap"


def test_the_modelux_sdk_works_unchanged(tenant: Tenant) -> None:
    mx = modelux.Modelux(api_key=tenant.key, base_url=f"{tenant.base}/v1")
    done = mx.chat.completions.create(model="gpt-fake", messages=MSG, tags={"team": "search"}, user_id="u1")
    assert done.modelux.provider_used == "openai" and done.modelux.request_id.startswith("req_")
    stream = mx.chat.completions.create(model="gpt-fake", messages=MSG, stream=True)
    assert stream.modelux.provider_used == "openai"
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == done.choices[0].message.content


def test_routing_config_and_fallback(tenant: Tenant) -> None:
    with tenant.manage() as m:
        r = m.post(
            "/routing-configs",
            json={
                "project_id": tenant.project_id,
                "slug": "safe",
                "strategy": "fallback",
                "targets": [{"model": "openai/fail-503"}, {"model": "anthropic/claude-fake"}],
            },
        )
        assert r.status_code == 201, r.text
    raw = client(tenant, max_retries=0).chat.completions.with_raw_response.create(model="@safe", messages=MSG)
    assert raw.headers["x-modelux-provider-used"] == "anthropic"
    assert raw.headers["x-modelux-model-used"] == "claude-fake"


def test_upstream_failures_map_to_502_and_504(tenant: Tenant) -> None:
    with tenant.manage() as m:
        m.post(
            "/routing-configs",
            json={
                "project_id": tenant.project_id,
                "slug": "slow",
                "strategy": "single",
                "model": "openai/slow-3",
                "timeout_ms": 300,
            },
        )
    c = client(tenant, max_retries=0)
    with pytest.raises(openai.APIStatusError) as bad:
        c.chat.completions.create(model="openai/fail-500", messages=MSG)
    assert bad.value.status_code == 502 and bad.value.body["type"] == "upstream_error"  # type: ignore[index]
    with pytest.raises(openai.APIStatusError) as slow:
        c.chat.completions.create(model="@slow", messages=MSG)
    assert slow.value.status_code == 504
    # both ran through the control plane: they count
    assert tenant.billing()["meters"]["monthly_requests"]["used"] == 2


def test_gateway_rejections_and_internal_traffic_do_not_count(tenant: Tenant) -> None:
    c = client(tenant, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(
            api_key="mlx_sk_nope", base_url=f"{tenant.base}/v1", max_retries=0
        ).chat.completions.create(model="gpt-fake", messages=MSG)
    with pytest.raises(openai.UnprocessableEntityError):
        c.chat.completions.create(model="mystery-model", messages=MSG)
    with pytest.raises(openai.UnprocessableEntityError):
        c.chat.completions.create(model="gpt-fake", messages=[])
    bad_json = httpx.post(
        f"{tenant.base}/v1/chat/completions",
        content=b"{",
        headers={"Authorization": f"Bearer {tenant.key}", "content-type": "application/json"},
    )
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "invalid_json"
    with tenant.manage() as m:
        for _ in range(20):
            assert m.get("/billing").status_code == 200
            assert m.get("/projects").status_code == 200
    c.chat.completions.create(model="gpt-fake", messages=MSG)
    assert tenant.billing()["meters"]["monthly_requests"]["used"] == 1


def test_the_402_body_and_retry_after_and_no_sdk_retry(
    live: LiveServer, upstream: FakeUpstream, clock: FrozenClock
) -> None:
    t = make_tenant(live, upstream, monthly_requests=3)
    c = client(t)  # default max_retries=2: a 402 must not be retried
    for _ in range(3):
        c.chat.completions.create(model="gpt-fake", messages=MSG)
    before = len(upstream.requests)
    with pytest.raises(openai.APIStatusError) as exc:
        c.chat.completions.create(model="gpt-fake", messages=MSG)
    err = exc.value
    assert err.status_code == 402
    body = err.body
    assert body["type"] == "plan_limit_exceeded"  # type: ignore[index]
    assert body["code"] == "monthly_requests_exhausted"  # type: ignore[index]
    assert body["limit"] == {
        "name": "monthly_requests",
        "limit": 3,
        "used": 3,
        "resets_at": "2026-12-28T00:00:00Z",
    }  # type: ignore[index]
    assert body["plan"] == "enterprise" and body["upgrade"] is None  # type: ignore[index]
    assert err.response.headers["retry-after"] == str(
        int((clock.now().replace(year=2026, month=12, day=28, hour=0) - clock.now()).total_seconds())
    )
    assert len(upstream.requests) == before
    metrics = httpx.get(f"{t.base}/metrics").text
    assert 'modelux_requests_rejected_total{reason="monthly_requests_exhausted"} 1.0' in metrics


def test_exact_cap_under_concurrency(live: LiveServer, upstream: FakeUpstream) -> None:
    t = make_tenant(live, upstream, monthly_requests=40)

    async def burst() -> list[int]:
        async with httpx.AsyncClient(
            base_url=f"{t.base}/v1", headers={"Authorization": f"Bearer {t.key}"}, timeout=30
        ) as h:

            async def one() -> int:
                r = await h.post("/chat/completions", json={"model": "gpt-fake", "messages": MSG})
                return r.status_code

            return await asyncio.gather(*(one() for _ in range(160)))

    codes = asyncio.run(burst())
    assert codes.count(200) == 40 and codes.count(402) == 120
    assert t.billing()["meters"]["monthly_requests"]["used"] == 40


def test_window_rolls_over_on_the_renewal_day(
    live: LiveServer, upstream: FakeUpstream, clock: FrozenClock
) -> None:
    t = make_tenant(live, upstream, monthly_requests=2)
    c = client(t, max_retries=0)
    c.chat.completions.create(model="gpt-fake", messages=MSG)
    c.chat.completions.create(model="gpt-fake", messages=MSG)
    with pytest.raises(openai.APIStatusError):
        c.chat.completions.create(model="gpt-fake", messages=MSG)
    clock.set(clock.now().replace(month=12, day=27, hour=23, minute=59))
    with pytest.raises(openai.APIStatusError):
        c.chat.completions.create(model="gpt-fake", messages=MSG)
    clock.advance(timedelta(minutes=1))  # 2026-12-28 00:00 UTC: the organization's creation day
    c.chat.completions.create(model="gpt-fake", messages=MSG)
    meter = t.billing()["meters"]["monthly_requests"]
    assert meter["used"] == 1 and meter["resets_at"] == "2027-01-28T00:00:00Z"


def test_downgraded_ensemble_config_gets_the_feature_402_and_returns_after_reupgrade(
    tenant: Tenant, live: LiveServer
) -> None:
    from tests.support.plans import move_to

    live.call(move_to(live.runtime, tenant.org_id, "pro"))
    with tenant.manage() as m:
        r = m.post(
            "/routing-configs",
            json={
                "project_id": tenant.project_id,
                "slug": "vote",
                "strategy": "ensemble",
                "members": [{"model": "openai/gpt-fake"}, {"model": "anthropic/claude-fake"}],
            },
        )
        assert r.status_code == 201, r.text
    c = client(tenant, max_retries=0)
    raw = c.chat.completions.with_raw_response.create(model="@vote", messages=MSG)
    assert raw.headers["x-modelux-ensemble-members"] == "2"
    live.call(move_to(live.runtime, tenant.org_id, "free"))
    used = tenant.billing()["meters"]["monthly_requests"]["used"]
    with pytest.raises(openai.APIStatusError) as exc:
        c.chat.completions.create(model="@vote", messages=MSG)
    assert exc.value.status_code == 402
    assert exc.value.body["type"] == "feature_not_in_plan" and exc.value.body["upgrade"]["plan"] == "pro"  # type: ignore[index]
    assert tenant.billing()["meters"]["monthly_requests"]["used"] == used
    live.call(move_to(live.runtime, tenant.org_id, "pro"))
    assert c.chat.completions.create(model="@vote", messages=MSG).choices[0].message.content


def test_anchor_on_the_31st_resets_on_the_last_day_of_a_30_day_month(
    live: LiveServer, upstream: FakeUpstream, clock: FrozenClock
) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import update

    from modelux_server.models import PlanState

    t = make_tenant(live, upstream, monthly_requests=1)

    async def anchor_on_the_31st() -> None:
        async with live.runtime.db.session() as s:
            await s.execute(
                update(PlanState)
                .where(PlanState.org_id == t.org_id)
                .values(anchor_at=datetime(2026, 1, 31, 9, tzinfo=UTC))
            )
        live.runtime.invalidate_now(org_id=t.org_id)

    live.call(anchor_on_the_31st())
    c = client(t, max_retries=0)
    clock.set(datetime(2026, 4, 29, 23, 0, tzinfo=UTC))  # window Mar 31 - Apr 30
    c.chat.completions.create(model="gpt-fake", messages=MSG)
    with pytest.raises(openai.APIStatusError) as exc:
        c.chat.completions.create(model="gpt-fake", messages=MSG)
    assert exc.value.body["limit"]["resets_at"] == "2026-04-30T00:00:00Z"  # type: ignore[index]
    clock.set(datetime(2026, 4, 30, 0, 0, tzinfo=UTC))
    c.chat.completions.create(model="gpt-fake", messages=MSG)
    assert t.billing()["meters"]["monthly_requests"]["resets_at"] == "2026-05-31T00:00:00Z"
    clock.set(datetime(2027, 2, 28, 0, 0, tzinfo=UTC))  # February: the 28th
    c.chat.completions.create(model="gpt-fake", messages=MSG)
    assert t.billing()["current_window"] == {"start": "2027-02-28T00:00:00Z", "end": "2027-03-31T00:00:00Z"}
