"""Short-lived lookups for the hot path.

Keys, plans, routing configs and credentials are read on every request but
change rarely. Each is cached for `ttl` seconds and dropped at once in this
process when it changes here (revoke, plan change, config save). Other
processes see a change within `ttl` (default 1 s); see docs/proxy.md.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    def __init__(self, ttl: float, max_items: int = 50_000) -> None:
        self.ttl = ttl
        self.max_items = max_items
        self._items: dict[K, tuple[float, V]] = {}

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        now = time.monotonic()
        hit = self._items.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await load()
        if len(self._items) >= self.max_items:
            self._items.clear()
        self._items[key] = (now + self.ttl, value)
        return value

    def drop(self, key: K) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()
