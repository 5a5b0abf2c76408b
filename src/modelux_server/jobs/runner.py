"""`modelux worker`: the background work of a deployment, apart from serving.

Runs the email outbox and the scheduled jobs (jobs/lifetime.py) until
SIGTERM or SIGINT, then lets the running job and the mailer's last round
finish (up to MODELUX_SHUTDOWN_GRACE_SECONDS) and exits 0. Any number of
workers may run: outbox rows and scheduled jobs are claimed, so each is done
once. With MODELUX_WORKER_HEALTH_PORT set, it answers `GET /healthz` there
for container probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time

from modelux_server.assembly import build_services, start_services
from modelux_server.config import Settings

log = logging.getLogger("modelux.jobs")


async def run_worker(settings: Settings) -> None:
    rt = build_services(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():  # asked again: stop waiting for the running work
            log.warning("worker: second signal, exiting now")
            os._exit(1)
        rt.shutdown_deadline = time.monotonic() + settings.shutdown_grace_seconds
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    health: asyncio.Server | None = None
    try:
        async with start_services(rt, role="worker"):
            if settings.worker_health_port:
                health = await asyncio.start_server(
                    _answer_health, settings.host, settings.worker_health_port
                )
            log.info("worker started (pid %s)", os.getpid())
            await stop.wait()
            log.info("worker stopping: finishing the running jobs")
    finally:
        if health is not None:
            health.close()
            with contextlib.suppress(Exception):
                await health.wait_closed()
        await rt.db.dispose()


async def _answer_health(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A liveness answer: the loop is running. One request per connection."""
    try:
        async with asyncio.timeout(5):
            request_line = await reader.readline()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
        ok = request_line.split(b" ")[:2] == [b"GET", b"/healthz"]
        body = b"ok" if ok else b"not found"
        status = b"200 OK" if ok else b"404 Not Found"
        writer.write(
            b"HTTP/1.1 "
            + status
            + b"\r\ncontent-type: text/plain\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\nconnection: close\r\n\r\n"
            + body
        )
        await writer.drain()
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()
