"""What every per-resource service shares: the engine's store, clock, events and siblings.

Each Stripe resource (customers, catalog, checkout, portal, subscriptions, changes,
invoices, timeline) is one :class:`Resource` on the :class:`~.engine.Engine`. A service
reaches another through ``self.engine`` (``self.engine.invoices.attempt_payment(...)``),
so every rule has one home and the call graph stays visible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import Engine
    from .events import Events

Obj = dict[str, Any]
"""A stored Stripe object: the JSON shape, with nested prices kept as ids."""

Objs = list[Obj]


class Resource:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.store

    def now(self) -> int:
        return self.engine.clock.now()

    @property
    def events(self) -> Events:
        return self.engine.events


def merge_metadata(current: dict[str, str], update: Any) -> dict[str, str]:
    """Stripe metadata semantics: ``""`` clears all keys, an empty value unsets one key."""
    if update == "":
        return {}
    merged = dict(current)
    for key, value in (update or {}).items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
