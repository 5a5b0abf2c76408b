"""The monthly request counter: one atomic check-and-increment per admission.

A request is counted when it is admitted, before the upstream call, and the
check and the increment are one step, so concurrent requests cannot both
take the last slot (the overspend bug of gateways that check, then record).

Backends (see usage/backends/): in-process with a durable SQLite/PostgreSQL
ledger for the embedded default, and Redis (one Lua script per admission)
with the ledger in PostgreSQL for several processes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from modelux_server.kit.windows import Window


@dataclass(frozen=True)
class Admitted:
    used: int  # the count including this request
    counted: bool = True  # False when admitted without a counter (fail-open)


@dataclass(frozen=True)
class Rejected:
    used: int
    limit: int


Admission = Admitted | Rejected


@dataclass(frozen=True)
class UsageObserved:
    """What listeners (threshold emails) learn after each counted admission."""

    org_id: str
    window: Window
    used: int
    limit: int | None


UsageListener = Callable[[UsageObserved], Awaitable[None]]


class RequestCounter(Protocol):
    async def admit(self, org_id: str, window: Window, limit: int | None) -> Admission:
        """Count one request unless `limit` (None = unlimited) is reached."""
        ...

    async def used(self, org_id: str, window: Window) -> int:
        """The live count for the window (what the billing meter shows)."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None:
        """Flush what is pending to the ledger."""
        ...
