"""The `modelux` command, run as a user would (subprocess, embedded SQLite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

BIN = [sys.executable, "-m", "modelux_server.cli"]


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "MODELUX_DATA_DIR": str(tmp_path / "data"), **(env or {})}
    return subprocess.run([*BIN, *args], capture_output=True, text=True, cwd=tmp_path, env=full, timeout=60)


def test_migrate_bootstrap_and_operator_commands(tmp_path: Path) -> None:
    assert run(tmp_path, "migrate").returncode == 0
    out = run(tmp_path, "bootstrap", "--org", "Acme", "--email", "ops@acme.test")
    assert out.returncode == 0, out.stderr
    lines = dict(
        line.split(None, 1)
        for line in out.stdout.splitlines()
        if line.strip() and not line.startswith("management")
    )
    org_id = lines["organization"].split()[0]
    key = next(w for w in out.stdout.split() if w.startswith("mlx_mk_"))
    assert org_id.startswith("org_") and "Free" in out.stdout

    changed = run(tmp_path, "admin", "set-plan", org_id, "team", "--interval", "annual")
    assert changed.returncode == 0 and "free -> team (annual)" in changed.stdout
    again = run(tmp_path, "admin", "set-plan", org_id, "team", "--interval", "annual")
    assert "nothing changed" in again.stdout
    refused = run(tmp_path, "admin", "set-plan", org_id, "enterprise")
    assert refused.returncode == 1 and "create-enterprise-plan" in refused.stderr

    ent = run(
        tmp_path,
        "admin",
        "create-enterprise-plan",
        org_id,
        "--name",
        "Acme Enterprise",
        "--limit",
        "monthly_requests=unlimited",
        "--limit",
        "projects=500",
        "--feature",
        "sso",
        "--feature",
        "scim",
        "--sla",
        "99.95%",
    )
    assert ent.returncode == 0, ent.stderr
    plan = json.loads(ent.stdout)
    assert plan["limits"]["monthly_requests"] is None and plan["limits"]["projects"] == 500
    assert plan["features"] == ["scim", "sso"]  # a set, stored sorted
    assert plan["sla"]["uptime_percent"] == "99.95"  # the free-text --sla of old, read as the uptime
    assert key.startswith("mlx_mk_")


def test_bad_catalog_stops_with_the_line(tmp_path: Path) -> None:
    catalog = tmp_path / "plans.toml"
    catalog.write_text('[plans.free]\nname = "Free"\nself_serve = true\nmonthly_price_cents = -1\n')
    out = run(tmp_path, "admin", "plans", env={"MODELUX_PLAN_CATALOG": str(catalog)})
    assert out.returncode == 2 and "line 4" in out.stderr and "monthly_price_cents" in out.stderr


def test_bad_setting_is_a_clear_error(tmp_path: Path) -> None:
    out = run(tmp_path, "migrate", env={"MODELUX_DATABASE_URL": "mysql://x"})
    assert out.returncode == 2 and "MODELUX_DATABASE_URL" in out.stderr
    out = run(tmp_path, "migrate", env={"MODELUX_ENV": "production"})
    assert out.returncode == 2 and "MODELUX_SECRET_KEY is required" in out.stderr
    assert "Traceback" not in out.stderr


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    out = run(tmp_path, "serve", "--port", "18099")
    assert out.returncode == 3
    assert "modelux migrate" in out.stderr


def test_serve_answers_on_embedded_defaults(tmp_path: Path) -> None:
    import socket
    import time

    assert run(tmp_path, "migrate").returncode == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MODELUX_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen([*BIN, "serve", "--port", str(port)], cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert r.text == "ok"
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz").json()
        assert ready["checks"]["database"] == "ok"
    finally:
        proc.terminate()
        proc.wait(10)
