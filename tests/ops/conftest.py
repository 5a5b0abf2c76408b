"""Fixtures for tests that run `modelux` as real processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import sqlite_copy, truncate_pg
from tests.support.redis import redis_url_or_skip
from tests.support.serve_process import ServeProcess


def process_env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "MODELUX_DATABASE_URL": db_url,
        "MODELUX_DATA_DIR": str(tmp_path / "data"),
        "MODELUX_SECRET_KEY": "ops-test",
        "MODELUX_COUNTER_RESERVE_BLOCK": "8",
        "MODELUX_COUNTER_RESERVE_BLOCK_MAX": "8",
        "MODELUX_EGRESS_ALLOW": "127.0.0.0/8",  # the fake upstream is on loopback
        "MODELUX_NOTIFICATIONS_POLL_SECONDS": "0.2",
    }


@pytest.fixture
def sqlite_env(sqlite_template: Path, tmp_path: Path) -> dict[str, str]:
    """The embedded default: SQLite (migrated) and in-process counters."""
    data = tmp_path / "data"
    data.mkdir()
    env = process_env(sqlite_copy(sqlite_template, data), tmp_path)
    return env


@pytest.fixture
def shared_env(pg_url: str, tmp_path: Path) -> dict[str, str]:
    """PostgreSQL and Redis: what several processes need."""
    truncate_pg(pg_url)
    return {**process_env(pg_url, tmp_path), "MODELUX_REDIS_URL": redis_url_or_skip()}


@pytest.fixture
def processes() -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    for p in started:
        p.stop()
