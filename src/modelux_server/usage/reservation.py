"""How many requests to reserve in the ledger at a time.

A bigger block means fewer ledger writes on the hot path; a smaller one
means less over-count after a crash. The block follows the traffic: it
doubles while reservations come more often than about once a second and
halves when they come rarely, between the configured minimum and maximum.
The maximum is therefore the documented bound on what a crash can add to a
count.
"""

from __future__ import annotations

import time


class BlockSizer:
    def __init__(self, minimum: int, maximum: int, target_seconds: float = 1.0) -> None:
        self.minimum = max(1, minimum)
        self.maximum = max(self.minimum, maximum)
        self.target = target_seconds
        self.size = self.minimum
        self._last: float | None = None

    def next(self) -> int:
        now = time.monotonic()
        if self._last is not None:
            gap = now - self._last
            if gap < self.target / 2:
                self.size = min(self.size * 2, self.maximum)
            elif gap > self.target * 4:
                self.size = max(self.size // 2, self.minimum)
        self._last = now
        return self.size
