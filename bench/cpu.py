"""Gateway CPU time per request: a figure that stays meaningful on a busy machine.

    python -m bench.cpu                      # c=1 and c=32, 5 s each, local SQLite counter
    python -m bench.cpu --conns 32 --seconds 10 --profile /tmp/gw.raw

Wall-clock throughput depends on what else the machine runs; the CPU the
gateway process burns per completed request mostly does not. It is read from
/proc/<pid>/stat (utime + stime) around a fixed wrk run. `--profile` attaches
py-spy (raw, collapsed stacks) during the last run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.databases import drop_pg_database
from tests.support.serve_process import ServeProcess

from bench.harness import Upstream, cli, make_tenant, wrk

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # fields[11], fields[12] are utime and stime (fields 14 and 15 of proc(5))
    return (int(fields[11]) + int(fields[12])) / TICKS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--conns", type=int, nargs="*", default=[1, 32])
    parser.add_argument("--profile", help="write a py-spy raw profile of the last run here")
    parser.add_argument("--backend", choices=["local-sqlite", "redis-postgresql"], default="local-sqlite")
    args = parser.parse_args()
    upstream = Upstream()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            from bench.run import backend_env  # here: bench.run imports this module

            env, pg = backend_env(args.backend, workdir)
            cli(env, "migrate")
            server = ServeProcess(env, workdir).start()
            try:
                assert server.proc is not None
                pid = server.proc.pid
                tenant = make_tenant(server, env, upstream, cap="1000000000")
                url = f"{server.url}/v1/chat/completions"
                wrk(url, tenant.key, 8, 2)  # warm caches and pools
                for i, conns in enumerate(args.conns):
                    spy = None
                    if args.profile and i == len(args.conns) - 1:
                        spy = subprocess.Popen(
                            [
                                str(Path(sys.executable).parent / "py-spy"),
                                "record",
                                "-f",
                                "raw",
                                "-r",
                                "200",
                                "-o",
                                args.profile,
                                "-p",
                                str(pid),
                                "-d",
                                str(args.seconds),
                            ],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                        )
                    before = cpu_seconds(pid)
                    result = wrk(url, tenant.key, conns, args.seconds)
                    used = cpu_seconds(pid) - before
                    if spy is not None:
                        spy.wait(30)
                    per_request_ms = 1000 * used / max(1, result.requests)
                    print(
                        f"c={conns:<3} {result.rps:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                        f"p99 {result.p99_ms:6.2f} ms  non2xx {result.non_2xx}  "
                        f"gateway CPU {per_request_ms:.3f} ms/req ({used:.2f} s for {result.requests})"
                    )
            finally:
                server.stop()
                if pg:
                    drop_pg_database(pg)
    finally:
        upstream.stop()


if __name__ == "__main__":
    main()
