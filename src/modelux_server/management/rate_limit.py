"""The management key's per-minute rate limit, for `/manage/v1` and `/mcp` alike."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.auth.principal import Principal
from modelux_server.billing.service import org_plan
from modelux_server.plans.catalog import MANAGEMENT_KEY_PER_MINUTE, Plan
from modelux_server.ratelimit.headers import refusal
from modelux_server.ratelimit.limiter import Refused, Verdict
from modelux_server.ratelimit.policy import management_key_limit, plan_matters
from modelux_server.services import Services


async def throttle_management_key(
    session: AsyncSession, rt: Services, principal: Principal
) -> Verdict | None:
    """Take one request from the key's allowance; raise the 429 when it has none left.

    None when no limit applies. The organization's plan is read only when some
    plan in the catalog sets a management-key limit of its own.
    """
    if rt.last_used is not None:
        # every management request (API, MCP) passes here once: its key's use is noted in
        # memory and written in the background (auth/last_used.py)
        rt.last_used.note("management_key", principal.actor)
    plan: Plan | None = None
    if plan_matters(rt.settings, rt.catalog, MANAGEMENT_KEY_PER_MINUTE):
        plan = (await org_plan(session, rt, principal.org_id)).entitlements.plan
    limit = management_key_limit(rt.settings, plan)
    if limit is None:
        return None
    verdict = await rt.rate_limiter.check(f"mk:{principal.actor}", limit)
    if isinstance(verdict, Refused):
        raise refusal(verdict, "management_key")
    return verdict
