"""`modelux serve` as a real separate process (durability and multi-process tests, benchmarks)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    def __init__(self, env: dict[str, str], cwd: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "MODELUX_PORT": str(self.port)}
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = cwd / f"serve-{self.port}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()

    def start(self, timeout: float = 30.0) -> ServeProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "modelux_server.cli", "serve"],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.DEVNULL,
            # a file, not a pipe: an unread pipe fills up and then blocks the server's logging
            stderr=self._log,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.log_path.read_text(errors="replace")
                raise RuntimeError(f"modelux serve did not start: {err[-2000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """`kill -9`: no shutdown hook runs."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()
