"""`modelux serve --workers`, `modelux worker`, graceful shutdown and start-up refusals, as real processes."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.fake_upstream import FakeUpstream
from tests.support.serve_process import MSG, ServeProcess, cli, free_port, run_cli, setup_tenant, used


def test_sigterm_mid_stream_finishes_the_stream_and_flushes_every_count(
    sqlite_env: dict[str, str], tmp_path: Path, upstream: FakeUpstream, processes: list[ServeProcess]
) -> None:
    env = {**sqlite_env, "MODELUX_SHUTDOWN_DRAIN_SECONDS": "3", "MODELUX_SHUTDOWN_GRACE_SECONDS": "20"}
    server = ServeProcess(env, tmp_path).start()
    processes.append(server)
    org_id, mk, key = setup_tenant(server, env, tmp_path, upstream, cap=1000)
    plain = [
        httpx.post(
            f"{server.url}/v1/chat/completions",
            json={"model": "gpt-fake", "messages": MSG},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        ).status_code
        for _ in range(3)
    ]
    assert plain == [200, 200, 200]

    chunks: list[str] = []
    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST",
            f"{server.url}/v1/chat/completions",
            json={"model": "openai/drip-0.2", "messages": MSG, "stream": True},
            headers={"Authorization": f"Bearer {key}"},
        ) as stream,
    ):
        lines = stream.iter_lines()
        chunks.append(next(line for line in lines if line.startswith("data:")))
        server.terminate()
        time.sleep(0.3)
        # draining: still answering, and telling the load balancer to stop sending
        ready = httpx.get(f"{server.url}/readyz", timeout=5)
        assert ready.status_code == 503 and ready.json()["checks"]["shutdown"] == "draining"
        chunks.extend(line for line in lines if line.startswith("data:"))
    assert chunks[-1] == "data: [DONE]"
    assert len(chunks) > 5
    assert server.wait_exit(60) == 0, server.log()[-3000:]

    # every count reached the database before the process exited
    db = Path(env["MODELUX_DATABASE_URL"].split(":///", 1)[1])
    with sqlite3.connect(db) as conn:
        logged = conn.execute("SELECT count(*) FROM request_logs WHERE org_id = ?", (org_id,)).fetchone()[0]
        assert logged == 4
    again = ServeProcess(env, tmp_path).start()
    processes.append(again)
    assert used(again.url, mk) == 4


def test_the_embedded_default_serves_one_process_and_refuses_a_second(
    sqlite_env: dict[str, str], tmp_path: Path, processes: list[ServeProcess]
) -> None:
    refused = run_cli(sqlite_env, tmp_path, "serve", "--workers", "2")
    assert refused.returncode == 2
    assert "--workers 2 needs shared counters" in refused.stderr
    assert "Traceback" not in refused.stderr

    first = ServeProcess(sqlite_env, tmp_path).start()
    processes.append(first)
    second = run_cli({**sqlite_env, "MODELUX_PORT": str(free_port())}, tmp_path, "serve", timeout=30)
    assert second.returncode == 2
    assert "is in use by another `modelux serve`" in second.stderr
    assert f"pid {first.proc.pid}" in second.stderr  # type: ignore[union-attr]


def test_unreachable_postgresql_is_one_line_at_start_and_in_migrate(tmp_path: Path) -> None:
    env = {
        "MODELUX_DATABASE_URL": f"postgresql://modelux:hunter2-secret@127.0.0.1:{free_port()}/modelux",
        "MODELUX_DATA_DIR": str(tmp_path / "data"),
    }
    for command in (["migrate"], ["serve"], ["worker"]):
        out = run_cli(env, tmp_path, *command)
        assert out.returncode == 4, (command, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1, out.stderr
        assert lines[0].startswith("error: cannot reach PostgreSQL at 127.0.0.1:")
        assert "connection refused" in lines[0]
        assert "hunter2" not in out.stderr


def test_unreachable_redis_is_one_warning_line_and_serving_goes_on(
    sqlite_env: dict[str, str], tmp_path: Path, processes: list[ServeProcess]
) -> None:
    dead = f"redis://:pw-secret@127.0.0.1:{free_port()}/0"
    server = ServeProcess({**sqlite_env, "MODELUX_REDIS_URL": dead}, tmp_path).start()
    processes.append(server)
    warning = [line for line in server.log().splitlines() if "Redis" in line]
    assert len(warning) == 1 and warning[0].startswith("warning: cannot reach Redis at 127.0.0.1:")
    assert "pw-secret" not in server.log()
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["redis"].startswith("error")


def test_links_use_the_port_actually_served(
    sqlite_env: dict[str, str], tmp_path: Path, processes: list[ServeProcess]
) -> None:
    server = ServeProcess(sqlite_env, tmp_path).start()
    processes.append(server)
    out = cli(sqlite_env, tmp_path, "bootstrap", "--org", "Acme", "--email", "ops@acme.test")
    mk = next(w for w in out.split() if w.startswith("mlx_mk_"))
    with httpx.Client(base_url=f"{server.url}/manage/v1", headers={"Authorization": f"Bearer {mk}"}) as c:
        assert c.post("/projects", json={"name": "one"}).status_code == 201
        refused = c.post("/projects", json={"name": "two"})  # Free allows one project
    assert refused.status_code == 402
    url = refused.json()["error"]["upgrade"]["url"]
    assert url.startswith(f"http://localhost:{server.port}/settings/billing?plan=")


def test_workers_share_the_port_and_one_exact_cap(
    shared_env: dict[str, str], tmp_path: Path, upstream: FakeUpstream, processes: list[ServeProcess]
) -> None:
    server = ServeProcess(shared_env, tmp_path, args=("--workers", "2")).start(timeout=60)
    processes.append(server)
    assert "2 processes, no background jobs" in server.log()
    org_id, mk, key = setup_tenant(server, shared_env, tmp_path, upstream, cap=25)

    async def burst() -> list[int]:
        async with httpx.AsyncClient(
            base_url=server.url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
            limits=httpx.Limits(max_connections=20),
        ) as c:
            answers = await asyncio.gather(
                *(
                    c.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": MSG})
                    for _ in range(40)
                )
            )
        return [a.status_code for a in answers]

    codes = asyncio.run(burst())
    assert codes.count(200) == 25 and codes.count(402) == 15
    assert used(server.url, mk) == 25
    assert {httpx.get(f"{server.url}/readyz").status_code for _ in range(4)} == {200}
    server.terminate()
    assert server.wait_exit(60) == 0


def test_the_worker_process_sends_what_serve_queued_and_stops_cleanly(
    shared_env: dict[str, str], tmp_path: Path, upstream: FakeUpstream, processes: list[ServeProcess]
) -> None:
    outbox = tmp_path / "data" / "outbox"
    server = ServeProcess(shared_env, tmp_path, args=("--workers", "1")).start()
    processes.append(server)
    org_id, mk, key = setup_tenant(server, shared_env, tmp_path, upstream, cap=10)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        codes = [
            c.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": MSG}).status_code
            for _ in range(11)
        ]
    assert codes == [200] * 10 + [402]
    time.sleep(1.0)
    # serve on PostgreSQL and Redis queues the plan-change, 80% and 100% emails but sends none itself
    assert not outbox.exists() or not list(outbox.glob("*.eml"))

    health = free_port()
    worker = start_worker({**shared_env, "MODELUX_WORKER_HEALTH_PORT": str(health)}, tmp_path)
    try:
        deadline = time.monotonic() + 30
        while len(list(outbox.glob("*.eml")) if outbox.exists() else []) < 3:
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{health}/healthz").text == "ok"
        subjects = sorted(
            line
            for p in outbox.glob("*.eml")
            for line in p.read_text().splitlines()
            if line.startswith("Subject:")
        )
        assert subjects == [
            "Subject: [modelux] Acme has reached its monthly request limit",
            "Subject: [modelux] Acme has used 80% of its monthly requests",
            "Subject: [modelux] Your Acme plan changed to Enterprise",
        ]
        worker.terminate()
        assert worker.wait(30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()


def test_a_worker_beside_the_embedded_default_starts_and_stops_cleanly(
    sqlite_env: dict[str, str], tmp_path: Path
) -> None:
    """`modelux worker` beside an embedded `serve` is harmless (every job is claimed) and stops on SIGTERM."""
    worker = start_worker(sqlite_env, tmp_path)
    worker.terminate()
    assert worker.wait(30) == 0
    assert "worker stopping" in (tmp_path / "worker.log").read_text()


def start_worker(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    log = cwd / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "modelux_server.cli", "worker"],
        env={**os.environ, **env},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),  # noqa: SIM115 - the child holds it
    )
    deadline = time.monotonic() + 30
    while "worker started" not in (log.read_text() if log.exists() else ""):
        assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return worker
