"""In-process counter with a durable ledger: the embedded default (one process).

The check and the increment happen with no `await` between them, so within
the event loop they are one atomic step. Durability comes from reserving
blocks in the ledger ahead of use: every admitted request is covered by a
stored ceiling before it is admitted, so a `kill -9` loses no admitted
request; after such a crash the count resumes from the ceiling, over-counting
by at most one block (at most `max_block`, see usage/reservation.py): it
errs toward never exceeding the cap.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from modelux_server.kit.windows import Window
from modelux_server.usage.counter import Admission, Admitted, Rejected
from modelux_server.usage.ledger import Ledger
from modelux_server.usage.reservation import BlockSizer


@dataclass
class _Slot:
    window: Window
    used: int
    reserved: int
    sizer: BlockSizer
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    dirty: bool = False
    extending: bool = False


class LocalCounter:
    def __init__(
        self, ledger: Ledger, *, block: int = 32, max_block: int = 4096, flush_interval: float = 2.0
    ) -> None:
        self.ledger = ledger
        self.block = max(1, block)
        self.max_block = max(self.block, max_block)
        self.flush_interval = flush_interval
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._loading: dict[tuple[str, str], asyncio.Lock] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def _slot(self, org_id: str, window: Window) -> _Slot:
        key = (org_id, window.key)
        slot = self._slots.get(key)
        if slot is not None:
            return slot
        lock = self._loading.setdefault(key, asyncio.Lock())
        async with lock:
            slot = self._slots.get(key)
            if slot is None:
                used, reserved = await self.ledger.load(org_id, window)
                # after a crash the ceiling is the only safe lower bound
                start = max(used, reserved)
                slot = _Slot(
                    window=window, used=start, reserved=start, sizer=BlockSizer(self.block, self.max_block)
                )
                self._slots[key] = slot
        return slot

    async def admit(self, org_id: str, window: Window, limit: int | None) -> Admission:
        slot = self._slots.get((org_id, window.key)) or await self._slot(org_id, window)
        while True:
            # check-and-increment: no await between these lines
            if limit is not None and slot.used >= limit:
                return Rejected(used=slot.used, limit=limit)
            if slot.used < slot.reserved:
                slot.used += 1
                slot.dirty = True
                if slot.reserved - slot.used <= slot.sizer.size * 3 // 4 and not slot.extending:
                    # extend the ceiling ahead of need, so admissions rarely wait on the
                    # database; flagged now, since the task only takes the lock later
                    slot.extending = True
                    self._spawn(self._extend(org_id, slot))
                return Admitted(used=slot.used)
            await self._extend(org_id, slot)

    async def _extend(self, org_id: str, slot: _Slot) -> None:
        try:
            async with slot.lock:
                if slot.reserved - slot.used <= slot.sizer.size * 3 // 4:
                    slot.reserved = await self.ledger.reserve(
                        org_id, slot.window, slot.used + slot.sizer.next()
                    )
        finally:
            slot.extending = False

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def used(self, org_id: str, window: Window) -> int:
        return (await self._slot(org_id, window)).used

    async def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            await self.flush()

    async def flush(self, *, settle: bool = False) -> None:
        counts = []
        for (org_id, _), slot in list(self._slots.items()):
            if slot.dirty or settle:
                slot.dirty = False
                counts.append((org_id, slot.window, slot.used))
        await self.ledger.record_used(counts, settle=settle)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush(settle=True)
