"""The operator tests use the dashboard tests' Chromium and the outbox tests' SMTP server."""

from tests.dashboard.conftest import chromium  # noqa: F401 - fixtures, shared
from tests.notifications.conftest import smtp  # noqa: F401
