"""Processes and load for the benchmark: the fake upstream, `modelux serve`, wrk."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from tests.support.serve_process import ServeProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
BODY = {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


class Upstream:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.fake_upstream", "--port", str(self.port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_http(f"{self.url}/v1/models")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "modelux_server.cli", *args],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return out.stdout


@dataclass
class Tenant:
    org_id: str
    mk: str
    key: str


def make_tenant(server: ServeProcess, env: dict[str, str], upstream: Upstream, cap: str) -> Tenant:
    out = cli(env, "bootstrap", "--org", "Bench", "--email", f"bench-{time.time_ns()}@bench.test")
    org_id = next(w for w in out.split() if w.startswith("org_"))
    mk = next(w for w in out.split() if w.startswith("mlx_mk_"))
    cli(env, "admin", "create-enterprise-plan", org_id, "--limit", f"monthly_requests={cap}")
    with httpx.Client(base_url=f"{server.url}/manage/v1", headers={"Authorization": f"Bearer {mk}"}) as c:
        project = c.post("/projects", json={"name": "bench"}).json()["data"]["id"]
        key = c.post("/api-keys", json={"project_id": project}).json()["data"]["key"]
        r = c.post(
            "/providers",
            json={
                "vendor": "openai",
                "name": "fake",
                "api_key": "sk-bench-0000",
                "base_url": f"{upstream.url}/v1",
            },
        )
        r.raise_for_status()
    return Tenant(org_id, mk, key)


@dataclass
class WrkResult:
    connections: int
    seconds: int
    requests: int
    rps: float
    non_2xx: int
    errors: int
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, key: str, connections: int, seconds: int) -> WrkResult:
    script = f"""
wrk.method = "POST"
wrk.body = '{json.dumps(BODY)}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
"""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    threads = 1 if connections == 1 else 2
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", f.name, url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    ).stdout
    os.unlink(f.name)
    pct = dict(re.findall(r"^\s+(50|75|90|99)\.?0*%\s+(\S+)\s*$", out, re.M))
    if len(pct) < 4:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        connections=connections,
        seconds=seconds,
        requests=requests,
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        non_2xx=int(non2xx.group(1)) if non2xx else 0,
        errors=sum(int(x) for x in errors.groups()) if errors else 0,
        p50_ms=_ms(pct["50"]),
        p75_ms=_ms(pct["75"]),
        p90_ms=_ms(pct["90"]),
        p99_ms=_ms(pct["99"]),
    )


RESULTS = Path(__file__).parent / "results"


def publish(
    name: str, results: list[dict[str, Any]], render: Callable[[list[dict[str, Any]], str, str], str]
) -> None:
    """Write bench/results/NAME.json and NAME.md (rendered with the machine and the date), and print it."""
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    date = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(
        json.dumps({"date": date, "machine": machine, "results": results}, indent=2) + "\n"
    )
    text = render(results, machine, date)
    (RESULTS / f"{name}.md").write_text(text)
    print(text)
