"""A blocking budget holds across two serving processes sharing PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from modelux_server.kit.ids import new_id
from modelux_server.models import Budget, BudgetSpend
from modelux_server.proxy.codec import dumps
from tests.support.fake_upstream import FakeUpstream
from tests.support.serve_process import MSG, ServeProcess, setup_tenant

PRICES = {"openai/slow-3": {"input_per_mtok": 1, "output_per_mtok": 2}}


def test_200_concurrent_requests_on_two_processes_never_spend_past_the_cap(
    shared_env: dict[str, str], tmp_path: Path, upstream: FakeUpstream, processes: list[ServeProcess]
) -> None:
    env = {**shared_env, "MODELUX_MODEL_PRICES": json.dumps(PRICES)}
    server = ServeProcess(env, tmp_path, args=("--workers", "2")).start(timeout=60)
    processes.append(server)
    org_id, _mk, key = setup_tenant(server, env, tmp_path, upstream, cap=100_000)
    body = {"model": "openai/slow-3", "messages": MSG, "max_tokens": 20}
    # 1 USD per million input tokens: the body's bytes in micro-dollars; 2 per output token
    budget_id = new_id("bud")  # Redis outlives the test's database: a key of its own
    worst = len(dumps(body)) + 2 * 20
    cap = 50 * worst
    # no pool: each asyncio.run below is a loop of its own
    engine = create_async_engine(env["MODELUX_DATABASE_URL"], poolclass=NullPool)

    async def add_budget() -> None:
        now = datetime.now(UTC)
        async with engine.begin() as conn:
            await conn.execute(
                Budget.__table__.insert().values(
                    id=budget_id,
                    org_id=org_id,
                    name="shared",
                    scope="organization",
                    scope_id=org_id,
                    cap_micros=cap,
                    period="monthly",
                    action="block",
                    thresholds=[50, 80, 100],
                    created_at=now,
                    updated_at=now,
                )
            )

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=server.url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
            limits=httpx.Limits(max_connections=200),
        ) as c:
            return list(
                await asyncio.gather(*(c.post("/v1/chat/completions", json=body) for _ in range(200)))
            )

    async def stored() -> int:
        async with engine.connect() as conn:
            row = (
                await conn.execute(select(BudgetSpend.spent_micros).where(BudgetSpend.budget_id == budget_id))
            ).first()
        return int(row[0]) if row else 0

    asyncio.run(add_budget())
    answers = asyncio.run(burst())
    codes = [a.status_code for a in answers]
    assert set(codes) <= {200, 402}, sorted(set(codes))
    ok = [a for a in answers if a.status_code == 200]
    assert len(ok) >= 50 and codes.count(402) > 0, codes.count(200)
    # both processes answered (each names itself in no header, but the counter's ledger
    # and the budget's are shared: every admitted answer is in the one settled total)
    real = sum(a.json()["usage"]["prompt_tokens"] + 2 * a.json()["usage"]["completion_tokens"] for a in ok)
    server.terminate()
    assert server.wait_exit(60) == 0
    spent = asyncio.run(stored())
    assert spent == real <= cap
