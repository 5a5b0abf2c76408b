"""How many processes serve, who runs background work, and where links point, from the settings."""

from __future__ import annotations

import os

import pytest

from modelux_server.config import Settings, available_cpus

PG = "postgresql://u@db:5432/modelux"
REDIS = "redis://cache:6379/0"


@pytest.fixture(autouse=True)
def no_modelux_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MODELUX_"):
            monkeypatch.delenv(name)


def make(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_the_embedded_default_is_one_process_that_runs_its_own_background_work() -> None:
    s = make()
    assert not s.shared_counters
    assert s.resolved_workers == 1
    assert s.serve_runs_background


def test_postgresql_without_redis_is_still_one_process() -> None:
    s = make(database_url=PG)
    assert not s.shared_counters and s.resolved_workers == 1 and s.serve_runs_background


def test_postgresql_and_redis_default_to_the_cpu_count_and_a_separate_worker() -> None:
    s = make(database_url=PG, redis_url=REDIS)
    assert s.shared_counters
    assert s.resolved_workers == available_cpus() <= (os.cpu_count() or 1)
    assert not s.serve_runs_background
    assert make(database_url=PG, redis_url=REDIS, serve_runs_worker=True).serve_runs_background
    assert make(database_url=PG, redis_url=REDIS, workers=3).resolved_workers == 3


def test_workers_disabled_means_no_background_work_anywhere() -> None:
    assert not make(workers_enabled=False).serve_runs_background
    assert not make(workers_enabled=False, serve_runs_worker=True).serve_runs_background


def test_links_default_to_the_host_and_port_served() -> None:
    assert make().resolved_public_url == "http://localhost:8080"
    assert make(port=9123).resolved_public_url == "http://localhost:9123"
    assert make(host="0.0.0.0", port=80).resolved_public_url == "http://localhost:80"
    assert make(host="10.1.2.3", port=8080).resolved_public_url == "http://10.1.2.3:8080"
    assert make(host="fd00::5", port=8080).resolved_public_url == "http://[fd00::5]:8080"
    assert (
        make(port=9123, public_url="https://llm.example.com/").resolved_public_url
        == "https://llm.example.com"
    )
    assert make(public_url="").resolved_public_url == "http://localhost:8080"
