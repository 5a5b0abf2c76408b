"""The app on a real port (MCP clients, the proxy and its fake upstream), an organization, and
the dashboard tests' Chromium (the Audit log page)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from tests.conftest import Org, make_org
from tests.dashboard.conftest import chromium  # noqa: F401 - a fixture, shared
from tests.support.live_server import LiveServer


@pytest.fixture
def live(settings: Settings, clock: FrozenClock) -> Iterator[LiveServer]:
    # the fake upstream listens on loopback, which the default egress policy refuses
    server = LiveServer(settings.model_copy(update={"egress_allow": "127.0.0.0/8"}), clock=clock).start()
    yield server
    server.stop()


@pytest.fixture
def acme(live: LiveServer) -> Org:
    """An organization on Free whose key has the owner role."""
    org: Org = live.call(make_org(live.runtime))
    return org
