"""What an audit-log export of 100,000 events costs the serving process in memory.

    python -m bench.audit_export          # writes bench/results/audit_export.{json,md}

One serving process per backend (the embedded SQLite default, and PostgreSQL with
Redis) holds an Enterprise organization whose chain gets 100,000 events, written
straight into the tables as the recorder would (each hash over the one before, so
the chain verifies). The CSV and the NDJSON export are then downloaded through
`GET /manage/v1/audit-log` with `Accept`, and the process's peak resident memory
(VmHWM in /proc/<pid>/status) is read before and after. The target: peak RSS under
150 MB, whatever the number of events (the export streams a batch at a time).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import create_async_engine
from tests.support.databases import drop_pg_database
from tests.support.serve_process import ServeProcess

from bench.harness import Upstream, cli, make_tenant, publish
from bench.run import backend_env
from modelux_server.audit.chain import GENESIS, content_of, digest
from modelux_server.config import Settings
from modelux_server.kit.ids import new_id
from modelux_server.models import AuditEvent, AuditHead

EVENTS = 100_000
TARGET_MB = 150


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


async def fill(url: str, org_id: str, n: int) -> None:
    """Append `n` events to the organization's chain, as `audit.record` would."""
    engine = create_async_engine(Settings(database_url=url).resolved_database_url)
    try:
        async with engine.begin() as conn:
            head = (
                await conn.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.org_id == org_id))
            ).first()
            seq, prev = (int(head[0]), str(head[1])) if head else (0, GENESIS)
            start = datetime.now(UTC) - timedelta(days=1)
            batch: list[dict[str, Any]] = []
            for i in range(n):
                seq += 1
                event = AuditEvent(
                    id=new_id("aud"),
                    org_id=org_id,
                    seq=seq,
                    actor_type="management_key",
                    actor_id="mk_bench",
                    actor_label="bench key",
                    source="api",
                    ip="203.0.113.7",
                    user_agent="bench/1.0",
                    request_id=new_id("req"),
                    action="project.updated",
                    target_type="project",
                    target_id=f"proj_{i % 50}",
                    changes={"name": {"from": f"app {i}", "to": f"app {i + 1}"}},
                    created_at=start + timedelta(microseconds=i * 500),
                )
                event.prev_hash, event.hash = prev, digest(prev, content_of(event))
                prev = event.hash
                batch.append({c.key: getattr(event, c.key) for c in AuditEvent.__table__.columns})
                if len(batch) == 5000:
                    await conn.execute(insert(AuditEvent), batch)
                    batch = []
            if batch:
                await conn.execute(insert(AuditEvent), batch)
            if head is None:
                await conn.execute(insert(AuditHead).values(org_id=org_id, seq=seq, hash=prev))
            else:
                await conn.execute(
                    update(AuditHead).where(AuditHead.org_id == org_id).values(seq=seq, hash=prev)
                )
    finally:
        await engine.dispose()


def measure(name: str, upstream: Upstream, workdir: Path) -> dict[str, Any]:
    env, pg = backend_env(name, workdir)
    try:
        cli(env, "migrate")
        server = ServeProcess(env, workdir).start(timeout=90)
        try:
            tenant = make_tenant(server, env, upstream, cap="unlimited")
            asyncio.run(fill(env["MODELUX_DATABASE_URL"], tenant.org_id, EVENTS))
            assert server.proc is not None
            pid = server.proc.pid
            headers = {"Authorization": f"Bearer {tenant.mk}"}
            with httpx.Client(base_url=f"{server.url}/manage/v1", headers=headers, timeout=600) as c:
                c.get("/audit-log", params={"limit": 5}).raise_for_status()  # warm
                before = peak_rss_mb(pid)
                out: dict[str, Any] = {"backend": name, "events": EVENTS, "rss_before_mb": round(before, 1)}
                for accept, kind in (("text/csv", "csv"), ("application/x-ndjson", "ndjson")):
                    started = time.perf_counter()
                    lines = size = 0
                    with c.stream("GET", "/audit-log", headers={"Accept": accept}) as r:
                        r.raise_for_status()
                        for chunk in r.iter_bytes():
                            size += len(chunk)
                            lines += chunk.count(b"\n")
                    out[kind] = {
                        "seconds": round(time.perf_counter() - started, 2),
                        "lines": lines,
                        "mb": round(size / 1e6, 1),
                        "peak_rss_mb": round(peak_rss_mb(pid), 1),
                    }
                verdict = c.get("/audit-log/verify").json()["data"]
                out["chain_ok"] = verdict["ok"]
                out["events_checked"] = verdict["events_checked"]
        finally:
            server.stop()
    finally:
        if pg is not None:
            drop_pg_database(pg)
    out["peak_rss_mb"] = max(out["csv"]["peak_rss_mb"], out["ndjson"]["peak_rss_mb"])
    return out


def render(results: list[dict[str, Any]], machine: str, date: str) -> str:
    lines = [
        f"# Audit log export: memory of the serving process ({date})",
        "",
        f"Machine: {machine}. {EVENTS:,} events in one organization's chain, exported whole "
        "through `GET /manage/v1/audit-log` as CSV and as NDJSON. Peak RSS is the serving "
        "process's VmHWM (its high-water mark since start, so it includes start-up and the "
        "warm-up request).",
        "",
        "| backend | RSS before MB | CSV lines | CSV s | NDJSON lines | NDJSON s | peak RSS MB "
        "| chain verifies |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['backend']} | {r['rss_before_mb']} | {r['csv']['lines']:,} | {r['csv']['seconds']} "
            f"| {r['ndjson']['lines']:,} | {r['ndjson']['seconds']} | **{r['peak_rss_mb']}** "
            f"| {r['chain_ok']} ({r['events_checked']:,} events) |"
        )
    lines += ["", f"Target: peak RSS under {TARGET_MB} MB.", ""]
    return "\n".join(lines)


def main() -> None:
    upstream = Upstream()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = [measure(name, upstream, Path(tmp)) for name in ("local-sqlite", "redis-postgresql")]
    finally:
        upstream.stop()
    publish("audit_export", results, render)


if __name__ == "__main__":
    main()
