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

from tests.support.fake_upstream import FakeUpstream

MSG = [{"role": "user", "content": "hi"}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    def __init__(
        self, env: dict[str, str], cwd: Path, port: int | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.args = args
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # one process unless asked (`--workers N` in args, or MODELUX_WORKERS in env): a test or
        # benchmark that reads the server's pid, metrics or CPU time means that one process
        self.env = {**os.environ, "MODELUX_WORKERS": "1", **env, "MODELUX_PORT": str(self.port)}
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = cwd / f"serve-{self.port}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()

    def start(self, timeout: float = 30.0) -> ServeProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "modelux_server.cli", "serve", *self.args],
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

    def terminate(self) -> None:
        """SIGTERM: the graceful shutdown a supervisor asks for."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


def run_cli(
    env: dict[str, str], cwd: Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`modelux ARGS` as its own process, with `env` over this one's environment."""
    return subprocess.run(
        [sys.executable, "-m", "modelux_server.cli", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    """`run_cli` that must succeed; its standard output."""
    out = run_cli(env, cwd, *args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def setup_tenant(
    server: ServeProcess, env: dict[str, str], cwd: Path, upstream: FakeUpstream, cap: int
) -> tuple[str, str, str]:
    out = cli(env, cwd, "bootstrap", "--org", "Acme", "--email", "ops@acme.test")
    org_id = next(w for w in out.split() if w.startswith("org_"))
    mk = next(w for w in out.split() if w.startswith("mlx_mk_"))
    cli(env, cwd, "admin", "create-enterprise-plan", org_id, "--limit", f"monthly_requests={cap}")
    with httpx.Client(base_url=f"{server.url}/manage/v1", headers={"Authorization": f"Bearer {mk}"}) as c:
        project = c.post("/projects", json={"name": "p"}).json()["data"]["id"]
        key = c.post("/api-keys", json={"project_id": project}).json()["data"]["key"]
        c.post(
            "/providers",
            json={
                "vendor": "openai",
                "name": "o",
                "api_key": "sk-test-00000",
                "base_url": f"{upstream.url}/v1",
            },
        )
    return org_id, mk, key


def used(url: str, mk: str) -> int:
    r = httpx.get(f"{url}/manage/v1/billing", headers={"Authorization": f"Bearer {mk}"})
    return int(r.json()["data"]["meters"]["monthly_requests"]["used"])


def send(url: str, key: str, n: int) -> list[int]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        return [
            c.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": MSG}).status_code
            for _ in range(n)
        ]
