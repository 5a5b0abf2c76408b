"""The sales tests: a server whose sales address is set, the outbox tests' SMTP server
(aiosmtpd on loopback) and the dashboard tests' Chromium."""

from __future__ import annotations

import pytest

from modelux_server.config import Settings
from tests.dashboard.conftest import chromium  # noqa: F401 - fixtures, shared
from tests.notifications.conftest import smtp  # noqa: F401

SALES = "sales@modelux.test"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared test settings, with inquiries emailed to `SALES`."""
    return settings.model_copy(update={"sales_email": SALES})
