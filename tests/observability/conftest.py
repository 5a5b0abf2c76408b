"""Observability fixtures: the fake upstream and settings on SQLite.

Logs, spans and metrics do not depend on the database, so the in-process tests
here run on SQLite only; the subprocess test of logs runs on both databases,
whose drivers log differently.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelux_server.config import Settings
from tests.support import databases


@pytest.fixture
def sqlite_settings(tmp_path: Path, sqlite_template: Path) -> Settings:
    return Settings(
        database_url=databases.sqlite_copy(sqlite_template, tmp_path),
        data_dir=tmp_path / "data",
        secret_key="observability-test-secret-key",
        public_url="https://modelux.test",
        workers_enabled=False,
        # the fake upstream listens on loopback, which the default egress policy refuses
        egress_allow="127.0.0.0/8",
    )
