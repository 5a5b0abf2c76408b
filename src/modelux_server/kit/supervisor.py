"""`modelux serve --workers N`: N server processes sharing one listening socket.

Ours rather than uvicorn's supervisor for three things uvicorn's does not do:

* a child that shut down gracefully exits 0. uvicorn re-raises the SIGTERM it
  handled once its shutdown is over; with the default handler in place (a
  spawned child has no other) that kills the child with SIGTERM, after the
  work is done but with a misleading status.
* a first child that fails to start (its lifespan refused: schema,
  catalog, database) stops the whole command with exit code 3, so systemd's
  `Restart=on-failure` and Kubernetes see a failure, not a clean exit.
* a child that dies later for any reason (`kill -9`, the OOM killer) is
  replaced at once, with a log line, while the others keep serving; a
  replacement that cannot start (the database is down just then) is tried
  again with a growing wait, up to 30 s.

The parent binds the socket, starts the children, forwards SIGTERM and
SIGINT to them, waits for each to finish its own graceful shutdown
(kit/lifecycle.py), and exits.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE

log = logging.getLogger("modelux")

EXIT_STARTUP_FAILURE = STARTUP_FAILURE


def run_processes(config: uvicorn.Config, count: int) -> int:
    """Serve with `count` processes until SIGTERM or SIGINT; returns the exit code for the command."""
    sock = config.bind_socket()
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()
    received: list[int] = []

    def on_signal(sig: int, _frame: FrameType | None) -> None:
        received.append(sig)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    def start() -> BaseProcess:
        child = context.Process(target=_serve_child, args=(config, sock), name="modelux-serve")
        child.start()
        return child

    children: list[BaseProcess | None] = [start() for _ in range(count)]
    first = set(range(count))  # still the first process of their slot
    retry_at: dict[int, float] = {}  # slot -> when to start its replacement again
    backoff: dict[int, float] = {}
    failed = False
    while not stop.wait(0.25):
        for index, child in enumerate(children):
            if child is None:
                if time.monotonic() >= retry_at[index]:
                    children[index] = start()
                continue
            if child.is_alive():
                continue
            if child.exitcode == EXIT_STARTUP_FAILURE and index in first:
                # the configuration, the schema or the database is wrong from the start
                log.error("a serve process failed to start (exit %s); stopping the others", child.exitcode)
                failed = True
                stop.set()
                break
            first.discard(index)
            if child.exitcode == EXIT_STARTUP_FAILURE:
                # a replacement that could not start (the database is down): try again, backing off
                wait = backoff[index] = min(30.0, backoff.get(index, 0.5) * 2)
                log.warning("a replacement serve process could not start; trying again in %.0f s", wait)
                children[index] = None
                retry_at[index] = time.monotonic() + wait
                continue
            backoff.pop(index, None)
            log.warning("serve process %s ended (exit %s); starting a replacement", child.pid, child.exitcode)
            children[index] = start()
    running = [child for child in children if child is not None]
    for child in running:
        if child.is_alive() and child.pid is not None:
            os.kill(child.pid, signal.SIGINT if received[-1:] == [signal.SIGINT] else signal.SIGTERM)
    for child in running:
        child.join()
    sock.close()
    return EXIT_STARTUP_FAILURE if failed else 0


def _serve_child(config: uvicorn.Config, sock: socket.socket) -> None:
    # the handler uvicorn saves and re-raises into once its shutdown is over
    signal.signal(signal.SIGTERM, lambda *_: None)
    signal.signal(signal.SIGINT, lambda *_: None)
    config.configure_logging()
    uvicorn.Server(config).run(sockets=[sock])
