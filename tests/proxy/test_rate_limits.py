"""Per-key rate limits at /v1 through the official openai SDK, on both backends (in-process and Redis).

A 429 comes after authentication and before admission: it is never counted
toward the plan's monthly requests and never looks like the plan's 402. The
test clock stands still, so a key's minute only moves when the test moves it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import httpx
import openai
import pytest

from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from tests.proxy.conftest import Tenant, make_tenant
from tests.support.fake_upstream import FakeUpstream
from tests.support.live_server import LiveServer
from tests.support.plans import move_to

MSG = [{"role": "user", "content": "hi"}]


def sdk(t: Tenant, key: str | None = None) -> openai.OpenAI:
    # no retries: the SDK would otherwise wait out Retry-After and try again
    return openai.OpenAI(api_key=key or t.key, base_url=f"{t.base}/v1", max_retries=0)


Serve = Callable[..., tuple[LiveServer, Tenant]]


@pytest.fixture
def serve(proxy_settings: Settings, clock: FrozenClock, upstream: FakeUpstream) -> Iterator[Serve]:
    """A server with the given settings changed, and a Free tenant on it."""
    servers: list[LiveServer] = []

    def start(**update: object) -> tuple[LiveServer, Tenant]:
        server = LiveServer(proxy_settings.model_copy(update=update), clock=clock).start()
        servers.append(server)
        return server, make_tenant(server, upstream)

    yield start
    for server in servers:
        server.stop()


def test_over_the_keys_limit_the_sdk_gets_a_429_that_is_not_counted(
    serve: Serve, upstream: FakeUpstream, clock: FrozenClock
) -> None:
    _, t = serve(rate_limit_project_key_per_minute=4)  # one request every 15 s after the burst
    c = sdk(t)
    remaining = []
    for _ in range(3):
        raw = c.chat.completions.with_raw_response.create(model="gpt-fake", messages=MSG)
        assert raw.headers["x-ratelimit-limit-requests"] == "4"
        remaining.append(raw.headers["x-ratelimit-remaining-requests"])
    streamed = c.chat.completions.with_raw_response.create(model="gpt-fake", messages=MSG, stream=True)
    assert streamed.headers["x-ratelimit-remaining-requests"] == "0"
    assert streamed.headers["x-ratelimit-reset-requests"] == "1m0s"
    assert "".join(ch.choices[0].delta.content or "" for ch in streamed.parse() if ch.choices)
    assert remaining == ["3", "2", "1"]
    sent_upstream = len(upstream.requests)

    for _ in range(3):
        with pytest.raises(openai.RateLimitError) as refused:
            c.chat.completions.create(model="gpt-fake", messages=MSG)
    err = refused.value
    assert err.status_code == 429
    assert err.body == {  # the SDK hands over the `error` object
        "type": "rate_limit_error",
        "code": "rate_limited",
        "message": err.body["message"],  # type: ignore[index]
        "limit": {"name": "requests_per_minute", "limit": 4, "scope": "api_key"},
    }
    assert err.response.headers["retry-after"] == "15"
    assert err.response.headers["x-ratelimit-limit-requests"] == "4"
    assert err.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert err.response.headers["x-ratelimit-reset-requests"] == "1m0s"
    assert err.response.headers["x-modelux-request-id"].startswith("req_")
    with pytest.raises(openai.RateLimitError):
        c.embeddings.create(model="text-embedding-fake", input="a")
    with pytest.raises(openai.RateLimitError):
        c.models.list()

    assert len(upstream.requests) == sent_upstream  # nothing refused went upstream
    assert t.billing()["meters"]["monthly_requests"]["used"] == 4  # nor was it counted
    metrics = httpx.get(f"{t.base}/metrics").text
    assert 'modelux_requests_rejected_total{reason="rate_limited"} 5.0' in metrics

    clock.advance(timedelta(seconds=15))
    again = c.chat.completions.with_raw_response.create(model="gpt-fake", messages=MSG)
    assert again.headers["x-ratelimit-remaining-requests"] == "0"
    assert t.billing()["meters"]["monthly_requests"]["used"] == 5


def test_a_keys_own_limit_beats_the_default_and_null_gives_it_back(serve: Serve, clock: FrozenClock) -> None:
    _, t = serve()  # the real defaults: 600 a minute on Free
    with t.manage() as m:
        keys = m.get("/api-keys").json()["data"]
        assert keys[0]["rate_limit_per_minute"] is None
        made = m.post("/api-keys", json={"project_id": t.project_id, "rate_limit_per_minute": 2})
        assert made.status_code == 201, made.text
        assert made.json()["data"]["rate_limit_per_minute"] == 2
        slow_id, slow_key = made.json()["data"]["id"], made.json()["data"]["key"]

    slow = sdk(t, slow_key)
    first = slow.chat.completions.with_raw_response.create(model="gpt-fake", messages=MSG)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    slow.chat.completions.create(model="gpt-fake", messages=MSG)
    with pytest.raises(openai.RateLimitError) as refused:
        slow.chat.completions.create(model="gpt-fake", messages=MSG)
    assert refused.value.response.headers["retry-after"] == "30"
    # the other key of the same project keeps the default
    other = sdk(t).chat.completions.with_raw_response.create(model="gpt-fake", messages=MSG)
    assert other.headers["x-ratelimit-limit-requests"] == "600"
    assert other.headers["x-ratelimit-remaining-requests"] == "599"

    with t.manage() as m:
        raised = m.patch(f"/api-keys/{slow_id}", json={"rate_limit_per_minute": 5})
        assert raised.json()["data"]["rate_limit_per_minute"] == 5
        # a raised limit hands out no free burst: the key has used its allowance
        with pytest.raises(openai.RateLimitError):
            slow.chat.completions.create(model="gpt-fake", messages=MSG)
        cleared = m.patch(f"/api-keys/{slow_id}", json={"rate_limit_per_minute": None})
        assert cleared.status_code == 200 and cleared.json()["data"]["rate_limit_per_minute"] is None
        assert cleared.json()["data"]["name"] == "default"  # a PATCH changes only what it names
    # nor does the default's; but 600 a minute refill ten requests a second
    with pytest.raises(openai.RateLimitError):
        slow.chat.completions.create(model="gpt-fake", messages=MSG)
    clock.advance(timedelta(seconds=1))
    back = slow.chat.completions.with_raw_response.create(model="gpt-fake", messages=MSG)
    assert back.headers["x-ratelimit-limit-requests"] == "600"
    assert back.headers["x-ratelimit-remaining-requests"] == "9"


def test_the_plans_default_from_the_catalog_applies(serve: Serve) -> None:
    live, t = serve()
    c = sdk(t)
    free = c.chat.completions.with_raw_response.create(model="gpt-fake", messages=MSG)
    assert free.headers["x-ratelimit-limit-requests"] == "600"
    live.call(move_to(live.runtime, t.org_id, "pro"))
    pro = c.chat.completions.with_raw_response.create(model="gpt-fake", messages=MSG)
    assert pro.headers["x-ratelimit-limit-requests"] == "1200"  # the default catalog's Pro
    # what the key had used carries over to the larger allowance
    assert pro.headers["x-ratelimit-remaining-requests"] == "598"


def test_an_operator_can_turn_project_key_limits_off(serve: Serve) -> None:
    _, t = serve(rate_limit_project_key_per_minute=0)
    raw = sdk(t).chat.completions.with_raw_response.create(model="gpt-fake", messages=MSG)
    assert "x-ratelimit-limit-requests" not in raw.headers
    assert raw.headers["x-modelux-provider-used"] == "openai"
