"""Moving an organization between plans in tests, the way an operator would."""

from __future__ import annotations

from modelux_server.billing.operator import set_plan
from modelux_server.services import Services


async def move_to(rt: Services, org_id: str, plan: str, interval: str = "monthly") -> None:
    async with rt.db.session() as session:
        await set_plan(session, rt, org_id, plan, interval, actor="test")
