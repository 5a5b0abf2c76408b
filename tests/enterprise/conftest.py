"""The contract tests use the outbox tests' SMTP server."""

from tests.notifications.conftest import smtp  # noqa: F401 - a fixture, shared
