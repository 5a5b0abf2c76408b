"""Point-in-time limits hold under concurrency: the last slot goes to exactly one create."""

from __future__ import annotations

import asyncio

import httpx

from modelux_server.services import Services
from tests.conftest import Org
from tests.support.plans import move_to


async def test_twenty_concurrent_creates_for_the_last_slot(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    await move_to(rt, org.id, "pro")  # 5 projects
    for i in range(4):
        assert (
            await client.post("/manage/v1/projects", json={"name": f"p{i}"}, headers=org.headers)
        ).status_code == 201

    async def create(i: int) -> httpx.Response:
        return await client.post("/manage/v1/projects", json={"name": f"race{i}"}, headers=org.headers)

    results = await asyncio.gather(*(create(i) for i in range(20)))
    codes = sorted(r.status_code for r in results)
    assert codes == [201] + [402] * 19
    for r in results:
        if r.status_code == 402:
            assert r.json()["error"]["limit"] == {"name": "projects", "limit": 5, "used": 5}
    listed = (await client.get("/manage/v1/projects", headers=org.headers)).json()["data"]
    assert len(listed) == 5


async def test_concurrent_api_key_creates_never_overshoot(client: httpx.AsyncClient, org: Org) -> None:
    pid = (await client.post("/manage/v1/projects", json={"name": "p"}, headers=org.headers)).json()["data"][
        "id"
    ]

    async def create() -> int:
        r = await client.post("/manage/v1/api-keys", json={"project_id": pid}, headers=org.headers)
        return r.status_code

    codes = await asyncio.gather(*(create() for _ in range(12)))
    assert codes.count(201) == 3 and codes.count(402) == 9
