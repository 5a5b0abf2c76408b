"""Fixtures for the Stripe billing tests (see stripe_world.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.billing.stripe_world import StripeWorld, start_world


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[StripeWorld]:
    """Stripe mode on SQLite and PostgreSQL, catalog already synced."""
    yield from start_world(db_url, tmp_path / "data")


@pytest.fixture
def sqlite_world(tmp_path: Path, sqlite_template: Path) -> Iterator[StripeWorld]:
    """Stripe mode on SQLite only, for behaviour the database does not change."""
    from tests.support import databases

    yield from start_world(databases.sqlite_copy(sqlite_template, tmp_path), tmp_path / "data")
