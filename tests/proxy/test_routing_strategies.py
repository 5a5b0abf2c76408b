"""Ensembles and custom routing rules, end to end against fake upstreams."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import openai
import pytest

from tests.proxy.conftest import Tenant, make_tenant
from tests.support.fake_upstream import FakeUpstream
from tests.support.live_server import LiveServer
from tests.support.plans import move_to

MSG = [{"role": "user", "content": "Is the sky blue?"}]


@pytest.fixture
def counter_backend() -> str:  # strategies do not depend on the counter backend
    return "local"


def names(upstream: FakeUpstream, **answers: object) -> dict[str, str]:
    """Unique model names per test, configured on the shared fake upstream."""
    tag = uuid.uuid4().hex[:6]
    out = {}
    for short, behaviour in answers.items():
        name = f"{short}-{tag}"
        upstream.configure(name, **behaviour)  # type: ignore[arg-type]
        out[short] = name
    return out


def config(t: Tenant, slug: str, body: dict) -> dict:
    with t.manage() as m:
        r = m.post("/routing-configs", json={"project_id": t.project_id, "slug": slug, **body})
        assert r.status_code == 201, r.text
        return r.json()["data"]


def chat(t: Tenant, model: str, **extra: object) -> httpx.Response:
    return httpx.post(
        f"{t.base}/v1/chat/completions",
        json={"model": model, "messages": MSG, **extra},
        headers={"Authorization": f"Bearer {t.key}"},
        timeout=30,
    )


@pytest.fixture
def team(live: LiveServer, upstream: FakeUpstream) -> Tenant:
    t = make_tenant(live, upstream)
    live.call(move_to(live.runtime, t.org_id, "team"))
    return t


def test_first_valid_returns_the_fastest_good_answer(team: Tenant, upstream: FakeUpstream) -> None:
    m = names(
        upstream,
        broken={"status": 500},
        slow={"delay": 1.0, "content": "slow answer"},
        fast={"delay": 0.05, "content": "fast answer"},
    )
    config(
        team,
        "race",
        {
            "strategy": "ensemble",
            "aggregation": "first_valid",
            "members": [
                {"model": f"openai/{m['broken']}"},
                {"model": f"openai/{m['slow']}"},
                {"model": f"openai/{m['fast']}"},
            ],
        },
    )
    r = chat(team, "@race")
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "fast answer"
    assert r.headers["x-modelux-ensemble-winner"] == "2"
    assert r.headers["x-modelux-ensemble-succeeded"] == "2"
    assert r.headers["x-modelux-model-used"] == m["fast"]


def test_majority_vote_and_weighted_vote(team: Tenant, upstream: FakeUpstream) -> None:
    m = names(
        upstream,
        a={"content": "Yes."},
        b={"content": "yes"},
        c={"content": "No"},
        d={"content": "No"},
        e={"content": "Yes!"},
    )
    members = [
        {"model": f"openai/{m[k]}", "weight": w}
        for k, w in (("a", 1), ("b", 1), ("c", 5), ("d", 1), ("e", 1))
    ]
    config(team, "vote", {"strategy": "ensemble", "aggregation": "majority_vote", "members": members})
    config(team, "weigh", {"strategy": "ensemble", "aggregation": "weighted_vote", "members": members})
    vote = chat(team, "@vote")
    assert vote.json()["choices"][0]["message"]["content"] == "Yes."  # three "yes" beat two "no"
    assert vote.headers["x-modelux-ensemble-agreed"] == "0,1,4"
    weigh = chat(team, "@weigh")
    assert weigh.json()["choices"][0]["message"]["content"] == "No"  # weight 6 beats weight 3
    assert weigh.headers["x-modelux-ensemble-agreed"] == "2,3"


def test_member_timeout_bounds_the_answer_time(team: Tenant, upstream: FakeUpstream) -> None:
    m = names(upstream, hang={"delay": 5.0, "content": "late"}, ok={"content": "on time"})
    config(
        team,
        "bounded",
        {
            "strategy": "ensemble",
            "aggregation": "majority_vote",
            "member_timeout_ms": 400,
            "timeout_ms": 600,
            "members": [{"model": f"openai/{m['hang']}"}, {"model": f"openai/{m['ok']}"}],
        },
    )
    started = time.monotonic()
    r = chat(team, "@bounded")
    elapsed = time.monotonic() - started
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "on time"
    assert elapsed < 2.0
    assert r.headers["x-modelux-ensemble-succeeded"] == "1"


def test_all_members_failing_is_a_502_and_still_counts_once(team: Tenant, upstream: FakeUpstream) -> None:
    m = names(upstream, x={"status": 500}, y={"status": 503})
    config(
        team,
        "doomed",
        {"strategy": "ensemble", "members": [{"model": f"openai/{m['x']}"}, {"model": f"openai/{m['y']}"}]},
    )
    before = team.billing()["meters"]["monthly_requests"]["used"]
    r = chat(team, "@doomed")
    assert r.status_code == 502 and r.json()["error"]["code"] == "ensemble_failed"
    assert team.billing()["meters"]["monthly_requests"]["used"] == before + 1


def test_an_ensemble_counts_as_one_request_and_streams_its_answer(
    team: Tenant, upstream: FakeUpstream
) -> None:
    m = names(upstream, a={"content": "same"}, b={"content": "same"}, c={"content": "same"})
    config(
        team,
        "trio",
        {
            "strategy": "ensemble",
            "aggregation": "majority_vote",
            "members": [{"model": f"openai/{m[k]}"} for k in "abc"],
        },
    )
    before = team.billing()["meters"]["monthly_requests"]["used"]
    client = openai.OpenAI(api_key=team.key, base_url=f"{team.base}/v1")
    chunks = list(client.chat.completions.create(model="@trio", messages=MSG, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "same"
    assert team.billing()["meters"]["monthly_requests"]["used"] == before + 1


def test_rules_route_by_tags_header_and_body(team: Tenant, upstream: FakeUpstream) -> None:
    m = names(upstream, search={"content": "search model"}, default={"content": "default model"})
    config(team, "search", {"strategy": "single", "model": f"openai/{m['search']}"})
    config(
        team,
        "router",
        {
            "strategy": "custom_rules",
            "rules": [{"if": 'tags.team == "search" and prompt_tokens < 1000', "then": "@search"}],
            "else": f"openai/{m['default']}",
        },
    )
    plain = chat(team, "@router")
    assert plain.json()["choices"][0]["message"]["content"] == "default model"
    by_body = chat(team, "@router", **{"mlx:tags": {"team": "search"}})
    assert by_body.json()["choices"][0]["message"]["content"] == "search model"
    by_header = httpx.post(
        f"{team.base}/v1/chat/completions",
        json={"model": "@router", "messages": MSG},
        headers={"Authorization": f"Bearer {team.key}", "X-Modelux-User-Tags": "team=search"},
    )
    assert by_header.json()["choices"][0]["message"]["content"] == "search model"


def test_rules_route_by_plan_usage(live: LiveServer, upstream: FakeUpstream) -> None:
    t = make_tenant(live, upstream, monthly_requests=10)
    m = names(upstream, premium={"content": "premium"}, cheap={"content": "cheap"})
    config(
        t,
        "thrifty",
        {
            "strategy": "custom_rules",
            "rules": [{"if": "usage.monthly_requests.pct >= 50", "then": f"openai/{m['cheap']}"}],
            "else": f"openai/{m['premium']}",
        },
    )
    answers = [chat(t, "@thrifty").json()["choices"][0]["message"]["content"] for _ in range(8)]
    # pct is read before this request is counted: 0..40% premium, 50%+ cheap
    assert answers == ["premium"] * 5 + ["cheap"] * 3


def test_rules_targeting_an_ensemble_need_ensembles_at_request_time(
    team: Tenant, upstream: FakeUpstream, live: LiveServer
) -> None:
    m = names(upstream, a={"content": "x"}, b={"content": "x"})
    config(
        team,
        "pair",
        {"strategy": "ensemble", "members": [{"model": f"openai/{m['a']}"}, {"model": f"openai/{m['b']}"}]},
    )
    config(
        team,
        "front",
        {"strategy": "custom_rules", "rules": [{"if": "true", "then": "@pair"}], "else": f"openai/{m['a']}"},
    )
    assert chat(team, "@front").status_code == 200
    live.call(move_to(live.runtime, team.org_id, "free"))
    r = chat(team, "@front")
    assert r.status_code == 402 and r.json()["error"]["feature"] == "custom_routing_rules"
    live.call(move_to(live.runtime, team.org_id, "team"))
    assert chat(team, "@front").status_code == 200


def test_request_log_keeps_the_ensemble_trace(team: Tenant, upstream: FakeUpstream, live: LiveServer) -> None:
    from sqlalchemy import select

    from modelux_server.models import RequestLog

    m = names(upstream, a={"content": "one"}, b={"content": "two"})
    config(
        team,
        "traced",
        {
            "strategy": "ensemble",
            "aggregation": "majority_vote",
            "members": [{"model": f"openai/{m['a']}"}, {"model": f"openai/{m['b']}", "weight": 2}],
        },
    )
    rid = chat(team, "@traced").headers["x-modelux-request-id"]

    async def find() -> str | None:
        proxy = live.runtime.proxy
        await proxy.request_log.flush()
        async with live.runtime.db.session() as s:
            row = (await s.execute(select(RequestLog).where(RequestLog.request_id == rid))).scalar_one()
            return row.trace

    trace = json.loads(live.call(find()) or "[]")
    summary = trace[-1]
    assert summary["aggregation"] == "majority_vote" and summary["winner"] == 1
