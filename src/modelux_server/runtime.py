"""What a running service holds: built once from settings in `create_app`.

Endpoints reach it through `request.app.state.runtime`; services receive the
parts they need as arguments, so they stay free of HTTP and globals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelux_server.billing.catalog import Catalog
from modelux_server.config import Settings
from modelux_server.kit.clock import Clock
from modelux_server.kit.db import Database
from modelux_server.kit.secrets import Encryptor


@dataclass
class Runtime:
    settings: Settings
    db: Database
    catalog: Catalog
    clock: Clock
    encryptor: Encryptor
    # filled in by the parts that own them (proxy counters, billing provider,
    # mailer, ...); typed loosely here to keep this module import-light
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def public_url(self) -> str:
        return self.settings.public_url

    def add_invalidator(self, invalidate: Callable[..., None]) -> None:
        self.extras.setdefault("invalidators", []).append(invalidate)

    def invalidate(self, **what: Any) -> None:
        """Tell in-process caches that something changed (token_hash=, org_id=, configs=, credentials=)."""
        for invalidate in self.extras.get("invalidators", []):
            invalidate(**what)
