"""`modelux serve --workers 2` against `--workers 1`, on PostgreSQL and Redis, in one run.

    python -m bench.workers            # writes bench/results/workers.{json,md}
    python -m bench.workers --seconds 5

Both servers face the same wrk load (32 connections) against the same fake
upstream, measured alternately (w1, w2, w1, w2) so a change in what else the
machine runs hits both; the figure is the ratio of their throughputs. A
direct run (wrk straight at the fake upstream) in the same run is the ceiling.
On a 2-core machine wrk and the fake upstream compete with the workers for
the same cores, so the ratio there is a floor of what more cores give.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.databases import create_pg_database, drop_pg_database
from tests.support.serve_process import ServeProcess

from bench.harness import Upstream, WrkResult, cli, make_tenant, wrk

RESULTS = Path(__file__).parent / "results"
CONNECTIONS = 32


def measure_workers(upstream: Upstream, workdir: Path, seconds: int, rounds: int = 2) -> dict[str, Any]:
    pg = create_pg_database()
    env = {
        "MODELUX_DATA_DIR": str(workdir / "workers"),
        "MODELUX_SECRET_KEY": "bench",
        "MODELUX_LOG_LEVEL": "WARNING",
        "MODELUX_ACCESS_LOG": "false",
        "MODELUX_EGRESS_ALLOW": "127.0.0.0/8",
        "MODELUX_RATE_LIMIT_PROJECT_KEY_PER_MINUTE": "0",
        "MODELUX_DATABASE_URL": pg,
        "MODELUX_REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    try:
        cli(env, "migrate")
        servers = {
            n: ServeProcess(env, workdir, args=("--workers", str(n))).start(timeout=90) for n in (1, 2)
        }
        try:
            tenant = make_tenant(servers[1], env, upstream, cap="1000000000")
            runs: dict[str, list[WrkResult]] = {"direct": [], "workers_1": [], "workers_2": []}
            for server in servers.values():
                wrk(f"{server.url}/v1/chat/completions", tenant.key, 8, 2)  # warm every process
            for _ in range(rounds):
                runs["direct"].append(
                    wrk(f"{upstream.url}/v1/chat/completions", "sk-bench", CONNECTIONS, seconds)
                )
                for n, server in servers.items():
                    runs[f"workers_{n}"].append(
                        wrk(f"{server.url}/v1/chat/completions", tenant.key, CONNECTIONS, seconds)
                    )
        finally:
            for server in servers.values():
                server.stop()
    finally:
        drop_pg_database(pg)

    def best(name: str) -> WrkResult:
        return max(runs[name], key=lambda r: r.rps)

    w1, w2, direct = best("workers_1"), best("workers_2"), best("direct")
    return {
        "backend": "postgresql+redis",
        "connections": CONNECTIONS,
        "rounds": rounds,
        "runs": {name: [asdict(r) for r in results] for name, results in runs.items()},
        "workers_1_rps": w1.rps,
        "workers_2_rps": w2.rps,
        "direct_rps": direct.rps,
        "ratio_workers_2_to_1": round(w2.rps / w1.rps, 3),
        "p99_ms": {"workers_1": w1.p99_ms, "workers_2": w2.p99_ms, "direct": direct.p99_ms},
        "non_2xx": sum(r.non_2xx for name in ("workers_1", "workers_2") for r in runs[name]),
    }


def render(result: dict[str, Any], machine: str, date: str) -> str:
    return "\n".join(
        [
            f"# `serve --workers 2` against `--workers 1` ({date})",
            "",
            f"Machine: {machine}. PostgreSQL + Redis, wrk with {result['connections']} connections, "
            f"best of {result['rounds']} alternating runs each, fake upstream answering at once.",
            "",
            "| | req/s | p99 ms |",
            "|---|---|---|",
            f"| direct to the fake upstream | {result['direct_rps']:.0f} "
            f"| {result['p99_ms']['direct']:.2f} |",
            f"| `--workers 1` | {result['workers_1_rps']:.0f} | {result['p99_ms']['workers_1']:.2f} |",
            f"| `--workers 2` | {result['workers_2_rps']:.0f} | {result['p99_ms']['workers_2']:.2f} |",
            "",
            f"**`--workers 2` / `--workers 1`: x{result['ratio_workers_2_to_1']:.2f}** throughput "
            f"({result['non_2xx']} non-2xx answers in the gateway runs).",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    upstream = Upstream()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result = measure_workers(upstream, Path(tmp), args.seconds)
    finally:
        upstream.stop()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    date = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "workers.json").write_text(
        json.dumps({"date": date, "machine": machine, **result}, indent=2) + "\n"
    )
    (RESULTS / "workers.md").write_text(render(result, machine, date))
    print(render(result, machine, date))


if __name__ == "__main__":
    main()
