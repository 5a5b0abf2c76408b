"""The egress verdict cache: answers kept for their time, memory bounded."""

from __future__ import annotations

import time

import pytest

from modelux_server.kit.egress import EgressGuard, EgressPolicy, VerdictCache


async def test_a_guard_asks_dns_again_only_after_its_ttl() -> None:
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["10.0.0.1"]

    kept = EgressGuard(EgressPolicy(), ttl=30, resolve=resolve)
    assert not await kept.admits("https://api.example/v1")
    assert not await kept.admits("https://api.example/v1")
    assert asked == ["api.example"]

    fresh = EgressGuard(EgressPolicy(), ttl=0, resolve=resolve)
    await fresh.admits("https://api.example/v1")
    await fresh.admits("https://api.example/v1")
    assert asked == ["api.example"] * 3


def test_the_cache_forgets_expired_answers_and_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    cache = VerdictCache(ttl=5, size=3)
    cache.put("a", True)
    cache.put("b", False)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (True, False, None)
    now[0] += 5
    assert cache.get("a") is None

    forever = VerdictCache(size=3)
    for key in "abc":
        forever.put(key, True)
    now[0] += 10**9
    assert forever.get("c") is True
    forever.put("d", False)  # past its size it starts over rather than growing
    assert (forever.get("a"), forever.get("d")) == (None, False)
