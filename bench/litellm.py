"""LiteLLM's proxy on the same harness, for scale (no budgets, no database).

    python -m bench.litellm    # writes bench/results/litellm.{json,md}

Installs `litellm[proxy]` (pinned) into bench/.work/litellm-venv on first use, points it
at the same fake upstream, and runs the same wrk load as bench.run. Not a dependency of
the project: only this comparison uses it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from tests.support.serve_process import free_port

from bench.harness import Upstream, wait_http, wrk

HERE = Path(__file__).parent
VENV = HERE / ".work" / "litellm-venv"
VERSION = "1.108.7"
KEY = "sk-litellm-bench"


def ensure_litellm() -> Path:
    binary = VENV / "bin" / "litellm"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", f"litellm[proxy]=={VERSION}"], check=True)
    return binary


def main() -> None:
    binary = ensure_litellm()
    upstream = Upstream()
    workdir = HERE / ".work"
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: gpt-fake\n"
        "    litellm_params:\n"
        "      model: openai/gpt-fake\n"
        f"      api_base: {upstream.url}/v1\n"
        "      api_key: sk-bench-0000\n"
        "general_settings:\n"
        f"  master_key: {KEY}\n"
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    proc = subprocess.Popen(
        [
            str(binary),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health/liveliness", timeout=120)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        wrk(url, KEY, 4, 3)  # warm up
        runs = {}
        for conns in (1, 32):
            direct = wrk(f"{upstream.url}/v1/chat/completions", "sk-bench-0000", conns, 10)
            proxied = wrk(url, KEY, conns, 10)
            runs[f"c{conns}"] = {"direct": asdict(direct), "litellm": asdict(proxied)}
    finally:
        proc.terminate()
        proc.wait(30)
        upstream.stop()
    result = {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "litellm": VERSION, "runs": runs}
    out = HERE / "results"
    (out / "litellm.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# LiteLLM proxy {VERSION} on the same harness ({result['date']})",
        "",
        "No budgets, no database, one worker; same fake upstream and wrk load as bench.run.",
        "",
        "| concurrency | direct req/s | litellm req/s | litellm p50 ms | litellm p99 ms "
        "| added p50 ms | non-2xx |",
        "|---|---|---|---|---|---|---|",
    ]
    for data in runs.values():
        d, p = data["direct"], data["litellm"]
        lines.append(
            f"| {p['connections']} | {d['rps']:.0f} | {p['rps']:.0f} | {p['p50_ms']:.2f} "
            f"| {p['p99_ms']:.2f} | {p['p50_ms'] - d['p50_ms']:.2f} | {p['non_2xx']} |"
        )
    (out / "litellm.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
