"""`modelux serve --workers N`: N server processes sharing one listening socket.

Ours rather than uvicorn's supervisor for three things uvicorn's does not do:

* a child that shut down gracefully exits 0. uvicorn re-raises the SIGTERM it
  handled once its shutdown is over; with the default handler in place (a
  spawned child has no other) that kills the child with SIGTERM, after the
  work is done but with a misleading status.
* a child that fails to start (its lifespan refused: schema, catalog,
  database) stops the whole command with exit code 3, so systemd's
  `Restart=on-failure` and Kubernetes see a failure, not a clean exit.
* a child that dies for any other reason (`kill -9`, the OOM killer) is
  replaced at once, with a log line; the others keep serving meanwhile.

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

    children = [start() for _ in range(count)]
    failed = False
    while not stop.wait(0.25):
        for index, child in enumerate(children):
            if child.is_alive():
                continue
            if child.exitcode == EXIT_STARTUP_FAILURE:
                log.error("a serve process failed to start (exit %s); stopping the others", child.exitcode)
                failed = True
                stop.set()
                break
            log.warning("serve process %s ended (exit %s); starting a replacement", child.pid, child.exitcode)
            children[index] = start()
    for child in children:
        if child.is_alive() and child.pid is not None:
            os.kill(child.pid, signal.SIGINT if received[-1:] == [signal.SIGINT] else signal.SIGTERM)
    for child in children:
        child.join()
    sock.close()
    if failed or any(child.exitcode == EXIT_STARTUP_FAILURE for child in children):
        return EXIT_STARTUP_FAILURE
    return 0


def _serve_child(config: uvicorn.Config, sock: socket.socket) -> None:
    # the handler uvicorn saves and re-raises into once its shutdown is over
    signal.signal(signal.SIGTERM, lambda *_: None)
    signal.signal(signal.SIGINT, lambda *_: None)
    config.configure_logging()
    uvicorn.Server(config).run(sockets=[sock])
