"""The proxy benchmark: gateway versus direct, both counter backends, and the cross-process cap.

    python -m bench.run                # full run, writes bench/results/latest.{json,md}
    python -m bench.run --seconds 5    # shorter

Load comes from wrk (a separate C process) against a fake upstream that
answers instantly, so the figures are what the gateway itself adds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from tests.support.databases import create_pg_database, drop_pg_database
from tests.support.serve_process import ServeProcess

from bench.cpu import cpu_seconds
from bench.harness import BODY, Upstream, cli, make_tenant, wrk
from bench.workers import measure_workers

RESULTS = Path(__file__).parent / "results"


def backend_env(name: str, workdir: Path) -> tuple[dict[str, str], str | None]:
    env = {
        "MODELUX_DATA_DIR": str(workdir / name),
        "MODELUX_SECRET_KEY": "bench",
        "MODELUX_LOG_LEVEL": "WARNING",
        "MODELUX_EGRESS_ALLOW": "127.0.0.0/8",  # the fake upstream is on loopback
        # a benchmark sends far more than a key's requests per minute by design
        "MODELUX_RATE_LIMIT_PROJECT_KEY_PER_MINUTE": "0",
    }
    if name == "local-sqlite":
        env["MODELUX_DATABASE_URL"] = f"sqlite:///{workdir / name / 'bench.db'}"
        (workdir / name).mkdir(parents=True, exist_ok=True)
        return env, None
    pg = create_pg_database()
    env["MODELUX_DATABASE_URL"] = pg
    env["MODELUX_REDIS_URL"] = "redis://127.0.0.1:6379/0"
    return env, pg


def measure_backend(name: str, upstream: Upstream, workdir: Path, seconds: int) -> dict[str, Any]:
    env, pg = backend_env(name, workdir)
    try:
        cli(env, "migrate")
        server = ServeProcess(env, workdir).start()
        try:
            tenant = make_tenant(server, env, upstream, cap="1000000000")
            url = f"{server.url}/v1/chat/completions"
            wrk(url, tenant.key, 8, 2)  # warm caches and connection pools
            out: dict[str, Any] = {}
            for conns in (1, 32):
                direct = wrk(f"{upstream.url}/v1/chat/completions", "sk-bench-0000", conns, seconds)
                assert server.proc is not None
                cpu_before = cpu_seconds(server.proc.pid)
                gateway = wrk(url, tenant.key, conns, seconds)
                cpu = cpu_seconds(server.proc.pid) - cpu_before
                out[f"c{conns}"] = {
                    "direct": asdict(direct),
                    "gateway": asdict(gateway),
                    # CPU the gateway process used per completed request: robust on a busy machine
                    "gateway_cpu_ms_per_request": round(1000 * cpu / max(1, gateway.requests), 3),
                    "added_p50_ms": round(gateway.p50_ms - direct.p50_ms, 3),
                    "added_p99_ms": round(gateway.p99_ms - direct.p99_ms, 3),
                }
            billing = httpx.get(
                f"{server.url}/manage/v1/billing", headers={"Authorization": f"Bearer {tenant.mk}"}
            ).json()["data"]
            counted = billing["meters"]["monthly_requests"]["used"]
            sent = sum(out[k]["gateway"]["requests"] for k in out) + 0
            out["counted_requests"] = counted
            out["sent_requests_measured"] = sent
            return out
        finally:
            server.stop()
    finally:
        if pg:
            drop_pg_database(pg)


def measure_cap(
    upstream: Upstream, workdir: Path, total: int = 2000, cap: int = 500, concurrency: int = 2000
) -> dict[str, Any]:
    """`total` requests, `concurrency` at a time (all at once by default), split over two
    processes sharing one cap through PostgreSQL + Redis."""
    env, pg = backend_env("cap", workdir)
    try:
        cli(env, "migrate")
        a = ServeProcess(env, workdir).start()
        b = ServeProcess(env, workdir).start()
        try:
            tenant = make_tenant(a, env, upstream, cap=str(cap))

            async def burst() -> list[int]:
                # aiohttp, not httpx, for the load: httpcore's pool bookkeeping grows with the
                # square of its connections, and 2,000 of them made the client the bottleneck.
                connector = aiohttp.TCPConnector(limit=concurrency)
                timeout = aiohttp.ClientTimeout(total=120)
                headers = {"Authorization": f"Bearer {tenant.key}"}
                async with aiohttp.ClientSession(connector=connector, timeout=timeout) as h:

                    async def one(i: int) -> int:
                        target = a if i % 2 else b
                        url = f"{target.url}/v1/chat/completions"
                        async with h.post(url, json=BODY, headers=headers) as r:
                            await r.read()
                            return r.status

                    return await asyncio.gather(*(one(i) for i in range(total)))

            started = time.perf_counter()
            codes = asyncio.run(burst())
            elapsed = time.perf_counter() - started
            billing = httpx.get(
                f"{a.url}/manage/v1/billing", headers={"Authorization": f"Bearer {tenant.mk}"}
            ).json()["data"]
            return {
                "processes": 2,
                "backend": "postgresql+redis",
                "requests": total,
                "concurrent_requests": concurrency,
                "cap": cap,
                "admitted_200": codes.count(200),
                "rejected_402": codes.count(402),
                "other": len(codes) - codes.count(200) - codes.count(402),
                "meter_used": billing["meters"]["monthly_requests"]["used"],
                "seconds": round(elapsed, 2),
            }
        finally:
            a.stop()
            b.stop()
    finally:
        if pg:
            drop_pg_database(pg)


def render(results: dict[str, Any]) -> str:
    lines = [
        f"# Proxy benchmark ({results['date']})",
        "",
        f"Machine: {results['machine']}. Load: wrk, {results['seconds']} s per run, "
        "fake upstream answering at once.",
        "",
        "| backend | concurrency | direct req/s | gateway req/s | gateway p50 ms | gateway p99 ms "
        "| added p50 ms | added p99 ms | gateway CPU ms/req | non-2xx |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, data in results["backends"].items():
        for level in ("c1", "c32"):
            d = data[level]
            g, r = d["gateway"], d["direct"]
            lines.append(
                f"| {backend} | {g['connections']} | {r['rps']:.0f} | {g['rps']:.0f} | {g['p50_ms']:.2f} | "
                f"{g['p99_ms']:.2f} | {d['added_p50_ms']:.2f} | {d['added_p99_ms']:.2f} | "
                f"{d['gateway_cpu_ms_per_request']:.3f} | {g['non_2xx']} |"
            )
    cap = results["cap"]
    lines += [
        "",
        f"Cap across {cap['processes']} processes ({cap['backend']}): "
        f"{cap['requests']} requests, {cap['concurrent_requests']} at a time, against a cap of {cap['cap']}: "
        f"{cap['admitted_200']} admitted, {cap['rejected_402']} got 402, "
        f"{cap['other']} other; meter shows {cap['meter_used']}.",
    ]
    workers = results.get("workers")
    if workers:
        lines += [
            "",
            f"Processes (PostgreSQL + Redis, {workers['connections']} connections): `--workers 1` "
            f"{workers['workers_1_rps']:.0f} req/s, `--workers 2` {workers['workers_2_rps']:.0f} req/s, "
            f"**x{workers['ratio_workers_2_to_1']:.2f}**; direct to the fake upstream "
            f"{workers['direct_rps']:.0f} req/s ([workers.md](workers.md) has the method).",
        ]
    for budget in results.get("budgets", []):
        lines += [
            "",
            f"Spend budgets ({budget['backend']}, three blocking budgets over every request against "
            f"none, same server, back-to-back rounds): **x{budget['ratio_on_to_off']:.3f}** (median of "
            f"the rounds' ratios; best runs {budget['off_rps']:.0f} against {budget['on_rps']:.0f} req/s) "
            "([budgets.md](budgets.md) has the method).",
        ]
    for export in results.get("audit_export", []):
        lines += [
            "",
            f"Audit log export ({export['backend']}, {export['events']:,} events as CSV and NDJSON): "
            f"peak RSS **{export['peak_rss_mb']} MB** against {export['rss_before_mb']} MB before the export "
            "([audit_export.md](audit_export.md) has the method).",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    upstream = Upstream()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            backends = {
                name: measure_backend(name, upstream, workdir, args.seconds)
                for name in ("local-sqlite", "redis-postgresql")
            }
            cap = measure_cap(upstream, workdir)
            workers = measure_workers(upstream, workdir, args.seconds)
            from bench.budgets import measure_budgets  # bench.budgets uses this module's backends

            budgets = [
                measure_budgets(name, upstream, workdir, args.seconds)
                for name in ("local-sqlite", "redis-postgresql")
            ]
            from bench.audit_export import measure as measure_audit_export

            audit_export = [
                measure_audit_export(name, upstream, workdir) for name in ("local-sqlite", "redis-postgresql")
            ]
    finally:
        upstream.stop()
    results = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "seconds": args.seconds,
        "run_id": uuid.uuid4().hex[:8],
        "backends": backends,
        "cap": cap,
        "workers": workers,
        "budgets": budgets,
        "audit_export": audit_export,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(render(results))
    print(render(results))


if __name__ == "__main__":
    main()
