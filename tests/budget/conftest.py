"""The budget tests share the outbox tests' SMTP server (aiosmtpd on loopback) and the
dashboard tests' Chromium."""

from tests.dashboard.conftest import chromium  # noqa: F401 - fixtures, shared
from tests.notifications.conftest import smtp  # noqa: F401
