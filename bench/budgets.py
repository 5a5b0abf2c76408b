"""What spend budgets cost: the same server, a tenant with budgets against one without.

    python -m bench.budgets            # writes bench/results/budgets.{json,md}
    python -m bench.budgets --seconds 5

One serving process per backend (the embedded SQLite default, and PostgreSQL with
Redis) holds two organizations. One has three blocking budgets over every request
(its organization, its project and its key), so each request reserves its worst
case on all three and settles it when the answer ends; the other has none. wrk
drives each in turn (off, on, off, on), so anything else the machine does hits
both, and the figure is the ratio of their throughputs in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
from tests.support.databases import drop_pg_database
from tests.support.serve_process import ServeProcess

from bench.cpu import cpu_seconds
from bench.harness import Upstream, WrkResult, cli, make_tenant, publish, wrk
from bench.run import backend_env

CONNECTIONS = 32
PRICES = {"openai/gpt-fake": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}}


def add_budgets(server: ServeProcess, mk: str, project_id: str, key_id: str) -> None:
    with httpx.Client(base_url=f"{server.url}/manage/v1", headers={"Authorization": f"Bearer {mk}"}) as c:
        for scope, scope_id in (("organization", None), ("project", project_id), ("api_key", key_id)):
            r = c.post(
                "/budgets",
                json={
                    "name": f"bench {scope}",
                    "scope": scope,
                    **({"scope_id": scope_id} if scope_id else {}),
                    "amount_usd": 1_000_000,
                    "period": "monthly",
                    "action": "block",
                },
            )
            r.raise_for_status()


def ids(server: ServeProcess, mk: str) -> tuple[str, str]:
    with httpx.Client(base_url=f"{server.url}/manage/v1", headers={"Authorization": f"Bearer {mk}"}) as c:
        key = c.get("/api-keys").json()["data"][0]
        return key["project_id"], key["id"]


def measure_budgets(
    name: str, upstream: Upstream, workdir: Path, seconds: int, rounds: int = 6
) -> dict[str, Any]:
    env, pg = backend_env(name, workdir)
    env = {**env, "MODELUX_ACCESS_LOG": "false", "MODELUX_MODEL_PRICES": json.dumps(PRICES)}
    try:
        cli(env, "migrate")
        server = ServeProcess(env, workdir).start(timeout=90)
        try:
            plain = make_tenant(server, env, upstream, cap="1000000000")
            budgeted = make_tenant(server, env, upstream, cap="1000000000")
            add_budgets(server, budgeted.mk, *ids(server, budgeted.mk))
            url = f"{server.url}/v1/chat/completions"
            for tenant in (plain, budgeted):
                wrk(url, tenant.key, 8, 2)  # warm both paths
            runs: dict[str, list[WrkResult]] = {"off": [], "on": []}
            cpu: dict[str, list[float]] = {"off": [], "on": []}
            assert server.proc is not None
            for round_number in range(rounds):
                # alternate which goes first, so a trend in the machine's load hits both
                order = ("off", "on") if round_number % 2 == 0 else ("on", "off")
                for which in order:
                    tenant = plain if which == "off" else budgeted
                    before = cpu_seconds(server.proc.pid)
                    result = wrk(url, tenant.key, CONNECTIONS, seconds)
                    used = cpu_seconds(server.proc.pid) - before
                    runs[which].append(result)
                    cpu[which].append(used * 1e6 / max(1, result.requests))
            with httpx.Client(
                base_url=f"{server.url}/manage/v1", headers={"Authorization": f"Bearer {budgeted.mk}"}
            ) as c:
                spend = [b["spend"]["spend_usd"] for b in c.get("/budgets").json()["data"]]
        finally:
            server.stop()
    finally:
        if pg is not None:
            drop_pg_database(pg)
    off = max(runs["off"], key=lambda r: r.rps)
    on = max(runs["on"], key=lambda r: r.rps)
    # each round runs off and on back to back: the machine's load of the moment hits both,
    # so the round's ratio is steadier than ratios of runs seconds apart
    paired = sorted(b.rps / a.rps for a, b in zip(runs["off"], runs["on"], strict=True))
    return {
        "backend": name,
        "connections": CONNECTIONS,
        "rounds": rounds,
        "runs": {k: [asdict(r) for r in v] for k, v in runs.items()},
        "off_rps": off.rps,
        "on_rps": on.rps,
        "ratio_on_to_off": round(statistics.median(paired), 3),
        "ratio_best_on_to_best_off": round(on.rps / off.rps, 3),
        "round_ratios": [round(r, 3) for r in paired],
        "p99_ms": {"off": off.p99_ms, "on": on.p99_ms},
        "non_2xx": sum(r.non_2xx for v in runs.values() for r in v),
        "budget_spend_usd": spend,
        # the gateway process's CPU per request (utime + stime): steadier than req/s here
        "cpu_us_per_request": {k: round(statistics.median(v), 1) for k, v in cpu.items()},
    }


def render(results: list[dict[str, Any]], machine: str, date: str) -> str:
    lines = [
        f"# Spend budgets on against off ({date})",
        "",
        f"Machine: {machine}. One serving process, wrk with {CONNECTIONS} connections, fake "
        'upstream answering at once. "on": three blocking budgets (organization, project, key) '
        "over every request. Each round runs off and on back to back (alternating which goes "
        "first); **on / off is the median of the rounds' ratios**. Best off and best on req/s, "
        "their ratio, and the serving process's median CPU per request are shown beside it.",
        "",
        "| backend | on / off (median of rounds) | rounds | best off req/s | best on req/s | best / best "
        "| p99 off ms | p99 on ms | CPU µs/req off | on |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['backend']} | **x{r['ratio_on_to_off']:.3f}** "
            f"| {', '.join(f'{x:.2f}' for x in r['round_ratios'])} "
            f"| {r['off_rps']:.0f} | {r['on_rps']:.0f} | x{r['ratio_best_on_to_best_off']:.3f} "
            f"| {r['p99_ms']['off']:.2f} | {r['p99_ms']['on']:.2f} "
            f"| {r['cpu_us_per_request']['off']:.0f} | {r['cpu_us_per_request']['on']:.0f} |"
        )
    lines += [
        "",
        "Target: on / off >= 0.95 (budgets cost at most 5% of throughput). "
        f"Non-2xx answers: {sum(r['non_2xx'] for r in results)}. Spend settled per budget "
        f"(USD): {', '.join(str(s) for r in results for s in r['budget_spend_usd'])}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    upstream = Upstream()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = [
                measure_budgets(name, upstream, Path(tmp), args.seconds)
                for name in ("local-sqlite", "redis-postgresql")
            ]
    finally:
        upstream.stop()
    publish("budgets", results, render)


if __name__ == "__main__":
    main()
