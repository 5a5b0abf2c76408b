"""Graceful shutdown of a serving process.

On SIGTERM (Kubernetes, compose, systemd, uvicorn's own supervisor):

1. `/readyz` answers 503 at once (`Services.draining`), while requests are
   still taken for `MODELUX_SHUTDOWN_DRAIN_SECONDS`, so a load balancer
   that polls readiness stops sending traffic before the port closes;
2. then uvicorn stops accepting, and in-flight requests (streams included)
   get up to `MODELUX_SHUTDOWN_GRACE_SECONDS` to finish;
3. then the app's parts stop in reverse order (assembly.py): the request
   log, the counter's ledger and the email outbox are flushed on the way.

A second SIGTERM during the drain skips the rest of the wait.

Signals belong to the process, not to an app, so this wraps the handler
uvicorn installed (its `handle_exit`) rather than replacing uvicorn's
shutdown: uvicorn still decides when connections close.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from modelux_server.services import Services

log = logging.getLogger("modelux")


def drain_on_sigterm(rt: Services) -> Callable[[], None]:
    """Install the drain in front of the current SIGTERM handler; returns its undo.

    Does nothing outside the main thread or when no Python handler is installed
    (an app driven by tests rather than by uvicorn).
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: Any = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return lambda: None
    loop = asyncio.get_running_loop()
    delay = rt.settings.shutdown_drain_seconds

    def on_sigterm(sig: int, frame: FrameType | None) -> None:
        if rt.draining:
            previous(sig, frame)  # asked twice: stop waiting
            return
        rt.draining = True
        rt.shutdown_deadline = time.monotonic() + delay + rt.settings.shutdown_grace_seconds
        # in a context of its own: the handler interrupts whichever request was running
        contextvars.Context().run(
            log.info, "SIGTERM: draining for %.3g s, then finishing in-flight requests", delay
        )
        loop.call_soon_threadsafe(loop.call_later, delay, previous, sig, None)

    signal.signal(signal.SIGTERM, on_sigterm)

    def undo() -> None:
        if signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, previous)

    return undo
