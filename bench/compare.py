"""Two versions of the gateway side by side, in one run on one machine.

    python -m bench.compare --base 140254c          # this tree against that commit
    python -m bench.compare --base 140254c --rounds 5 --seconds 5

Figures from different days are not comparable on a shared machine (the same
commit measures several times apart), so the base commit is checked out into a
temporary git worktree and both versions serve at once, on the embedded default
(SQLite, in-process counter) against the same fake upstream. The wrk runs
alternate base, head, base, head ... and the report gives the median of each
and the ratio head/base, for throughput and for the gateway's CPU per request.

Writes bench/results/NAME.{json,md} (--name, default "compare").
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.serve_process import ServeProcess

from bench.cpu import cpu_seconds
from bench.harness import Upstream, cli, make_tenant, wrk

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


class Version:
    """One version of the code, serving on its own SQLite database."""

    def __init__(self, name: str, src: Path, workdir: Path, upstream: Upstream) -> None:
        self.name = name
        data = workdir / name
        data.mkdir(parents=True)
        self.env = {
            # this version's package first on the path, ahead of the installed one
            "PYTHONPATH": f"{src}:{ROOT}",
            "MODELUX_DATA_DIR": str(data),
            "MODELUX_DATABASE_URL": f"sqlite:///{data / 'bench.db'}",
            "MODELUX_SECRET_KEY": "bench",
            "MODELUX_LOG_LEVEL": "WARNING",
            "MODELUX_EGRESS_ALLOW": "127.0.0.0/8",
            # a benchmark sends far more than a key's requests per minute by design
            "MODELUX_RATE_LIMIT_PROJECT_KEY_PER_MINUTE": "0",
        }
        cli(self.env, "migrate")
        self.server = ServeProcess(self.env, workdir).start()
        self.tenant = make_tenant(self.server, self.env, upstream, cap="1000000000")
        self.url = f"{self.server.url}/v1/chat/completions"
        self.runs: dict[int, list[dict[str, float]]] = {}

    def measure(self, connections: int, seconds: int) -> None:
        assert self.server.proc is not None
        before = cpu_seconds(self.server.proc.pid)
        result = wrk(self.url, self.tenant.key, connections, seconds)
        cpu = cpu_seconds(self.server.proc.pid) - before
        if result.non_2xx or result.errors:
            raise RuntimeError(f"{self.name}: {result.non_2xx} non-2xx, {result.errors} errors")
        self.runs.setdefault(connections, []).append(
            {
                "rps": result.rps,
                "p50_ms": result.p50_ms,
                "p99_ms": result.p99_ms,
                "cpu_ms_per_request": 1000 * cpu / max(1, result.requests),
            }
        )

    def median(self, connections: int, figure: str) -> float:
        return statistics.median(run[figure] for run in self.runs[connections])

    def stop(self) -> None:
        self.server.stop()


def run(base: str, rounds: int, seconds: int) -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", base], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="mlx-compare-") as tmp:
        workdir = Path(tmp)
        tree = workdir / "base-tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), commit], cwd=ROOT, check=True)
        upstream = Upstream()
        versions: list[Version] = []
        try:
            versions = [
                Version("base", tree / "src", workdir, upstream),
                Version("head", ROOT / "src", workdir, upstream),
            ]
            for v in versions:
                wrk(v.url, v.tenant.key, 8, 2)  # warm caches and connection pools
            for _ in range(rounds):
                for connections in (1, 32):
                    for v in versions:
                        v.measure(connections, seconds)
            base_v, head_v = versions
            levels = {}
            for connections in (1, 32):
                levels[f"c{connections}"] = {
                    name: {
                        figure: round(v.median(connections, figure), 3)
                        for figure in ("rps", "p50_ms", "p99_ms", "cpu_ms_per_request")
                    }
                    for name, v in (("base", base_v), ("head", head_v))
                }
                level = levels[f"c{connections}"]
                level["ratio_rps"] = round(level["head"]["rps"] / level["base"]["rps"], 3)
                level["ratio_cpu"] = round(
                    level["head"]["cpu_ms_per_request"] / level["base"]["cpu_ms_per_request"], 3
                )
        finally:
            for v in versions:
                v.stop()
            upstream.stop()
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores, "
        f"Python {platform.python_version()}",
        "base": commit,
        "head": f"{head} + working tree",
        "rounds": rounds,
        "seconds": seconds,
        "levels": levels,
    }


def render(results: dict[str, Any]) -> str:
    lines = [
        f"# Gateway against an earlier commit, same run ({results['date']})",
        "",
        f"Machine: {results['machine']}. Base {results['base']}, head {results['head']}. "
        f"Embedded default (SQLite, in-process counter), fake upstream answering at once; "
        f"{results['rounds']} alternating wrk runs of {results['seconds']} s per version and "
        "concurrency, medians shown.",
        "",
        "| concurrency | base req/s | head req/s | head/base req/s | base CPU ms/req | head CPU ms/req "
        "| head/base CPU | base p99 ms | head p99 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for level, d in results["levels"].items():
        b, h = d["base"], d["head"]
        lines.append(
            f"| {level[1:]} | {b['rps']:.0f} | {h['rps']:.0f} | {d['ratio_rps']:.3f} | "
            f"{b['cpu_ms_per_request']:.3f} | {h['cpu_ms_per_request']:.3f} | {d['ratio_cpu']:.3f} | "
            f"{b['p99_ms']:.2f} | {h['p99_ms']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--name", default="compare", help="results file name (without extension)")
    args = parser.parse_args()
    results = run(args.base, args.rounds, args.seconds)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / f"{args.name}.md").write_text(render(results))
    print(render(results))


if __name__ == "__main__":
    main()
