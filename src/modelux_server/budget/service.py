"""Spend budgets: a USD cap per period on an organization, a project or an API key.

Every operation takes the acting principal and checks its role here (owners and
admins change budgets, members read them), so the management API, the dashboard
and the MCP tools cannot disagree. Each change drops the proxy's cached budgets
once it commits (`rt.invalidate(session, budgets=True)`).

What a budget has spent comes from the live counters (`rt.budget_meter`) in a
serving process, and from the `budget_spend` ledger elsewhere (`current_spend`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import cast

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.audit.record import actor_of, record
from modelux_server.auth.principal import Principal
from modelux_server.budget import repository
from modelux_server.budget.periods import period_at
from modelux_server.budget.schemas import MICROS, BudgetView, Spend, usd
from modelux_server.errors import Conflict, NotFound, ValidationFailed
from modelux_server.kit.ids import new_id
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.models import Budget
from modelux_server.project import repository as projects
from modelux_server.services import Services


async def current_spend(rt: Services, budget: Budget, now: datetime, anchor_day: int) -> Spend:
    """The budget's settled spend in the period containing `now`.

    `anchor_day` is the organization's billing renewal day (`repository.anchor_day`),
    which only `billing` periods use. Read outside the caller's transaction, as the
    request counter is.
    """
    period = period_at(budget.period, now, anchor_day)
    meter = rt.budget_meter
    if meter is not None:
        spent = await meter.spent(budget.id, period)
    else:
        async with rt.db.read_sessionmaker() as session:
            spent = await repository.spent(session, budget.id, period.key)
            await session.commit()
    return Spend(period=period, spent_micros=spent, cap_micros=budget.cap_micros)


async def _view(session: AsyncSession, rt: Services, budget: Budget) -> BudgetView:
    day = await repository.anchor_day(session, budget.org_id)
    return BudgetView(budget, await current_spend(rt, budget, rt.clock.now(), day))


# ------------------------------------------------------------------ rules


def cap_micros(amount_usd: Decimal) -> int:
    """The cap in micro-dollars of an amount the body checked (a number, > 0, <= the maximum)."""
    micros = amount_usd * MICROS
    if micros != micros.to_integral_value():
        raise ValidationFailed(
            "amount_usd: must have at most 6 decimal places (micro-dollars)",
            code="invalid_field",
            param="amount_usd",
        )
    return int(micros)


def checked_thresholds(thresholds: list[int]) -> list[int]:
    if any(b <= a for a, b in zip(thresholds, thresholds[1:], strict=False)):
        raise ValidationFailed(
            "thresholds: must be in ascending order without repeats, e.g. [50, 80, 100]",
            code="invalid_field",
            param="thresholds",
        )
    return list(thresholds)


async def _scope_id(session: AsyncSession, principal: Principal, scope: str, scope_id: str | None) -> str:
    """The id a scope names, checked: this organization's own, or one of its live projects or keys."""
    if scope == "organization":
        if scope_id is not None and scope_id != principal.org_id:
            raise NotFound(
                f"No organization with id '{scope_id}': an organization budget applies to the "
                "organization of this key; leave scope_id out.",
                code="organization_not_found",
                param="scope_id",
            )
        return principal.org_id
    if scope_id is None:
        raise ValidationFailed(
            f"scope_id: required for a budget on {'an API key' if scope == 'api_key' else 'a project'}",
            code="missing_field",
            param="scope_id",
        )
    try:
        if scope == "project":
            return (await projects.get_live(session, principal.org_id, scope_id)).id
        return (await repository.live_api_key(session, principal.org_id, scope_id)).id
    except NotFound as exc:
        raise NotFound(exc.message, code=exc.code, param="scope_id") from None


async def _check_name(
    session: AsyncSession, org_id: str, name: str, *, other_than: str | None = None
) -> None:
    if await repository.name_taken(session, org_id, name, other_than=other_than):
        raise Conflict(f"A budget named '{name}' already exists.", code="budget_name_taken", param="name")


async def _flush(session: AsyncSession, name: str) -> None:
    """Write now; a concurrent request that took the same name meets the unique index here."""
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(
            f"A budget named '{name}' already exists.", code="budget_name_taken", param="name"
        ) from None


# ------------------------------------------------------------------ operations


async def create(
    session: AsyncSession,
    rt: Services,
    principal: Principal,
    *,
    name: str,
    scope: str,
    scope_id: str | None,
    amount_usd: Decimal,
    period: str,
    action: str,
    thresholds: list[int],
) -> BudgetView:
    """A new budget, from the values a `BudgetCreate` body checked."""
    principal.require("admin")
    cap = cap_micros(amount_usd)
    percents = checked_thresholds(thresholds)
    target = await _scope_id(session, principal, scope, scope_id)
    await _check_name(session, principal.org_id, name)
    now = rt.clock.now()
    budget = Budget(
        id=new_id("bud"),
        org_id=principal.org_id,
        name=name,
        scope=scope,
        scope_id=target,
        cap_micros=cap,
        period=period,
        action=action,
        thresholds=percents,
        created_at=now,
        updated_at=now,
    )
    session.add(budget)
    await _flush(session, name)
    await record(
        session,
        rt,
        principal.org_id,
        actor_of(principal),
        "budget.created",
        "budget",
        budget.id,
        after=audited(budget),
    )
    rt.invalidate(session, budgets=True)
    return await _view(session, rt, budget)


async def list_budgets(
    session: AsyncSession, rt: Services, principal: Principal, page: PageRequest
) -> Page[BudgetView]:
    found = await repository.list_for_org(session, principal.org_id, page)
    day = await repository.anchor_day(session, principal.org_id)
    now = rt.clock.now()
    views = [BudgetView(b, await current_spend(rt, b, now, day)) for b in found.items]
    return Page(items=views, next_cursor=found.next_cursor)


async def get(session: AsyncSession, rt: Services, principal: Principal, budget_id: str) -> BudgetView:
    return await _view(session, rt, await repository.get(session, principal.org_id, budget_id))


async def update(
    session: AsyncSession, rt: Services, principal: Principal, budget_id: str, changes: dict[str, object]
) -> BudgetView:
    """Apply the fields a PATCH body set (`BudgetUpdate.model_dump(exclude_unset=True)`).

    Moving a budget to another scope names the new scope's id, as on create; the
    spend counted so far stays with the budget.
    """
    principal.require("admin")
    budget = await repository.get(session, principal.org_id, budget_id)
    before = audited(budget)
    if "amount_usd" in changes:
        budget.cap_micros = cap_micros(Decimal(str(changes["amount_usd"])))
    if "thresholds" in changes:
        budget.thresholds = checked_thresholds(cast(list[int], changes["thresholds"]))
    scope = str(changes.get("scope", budget.scope))
    if "scope_id" in changes or scope != budget.scope:
        given = changes.get("scope_id")
        budget.scope_id = await _scope_id(session, principal, scope, None if given is None else str(given))
        budget.scope = scope
    if "name" in changes and changes["name"] != budget.name:
        name = str(changes["name"])
        await _check_name(session, principal.org_id, name, other_than=budget.id)
        budget.name = name
    for field in ("period", "action"):
        if field in changes:
            setattr(budget, field, str(changes[field]))
    budget.updated_at = rt.clock.now()
    await _flush(session, budget.name)
    if audited(budget) != before:
        await record(
            session,
            rt,
            principal.org_id,
            actor_of(principal),
            "budget.updated",
            "budget",
            budget.id,
            before=before,
            after=audited(budget),
        )
    rt.invalidate(session, budgets=True)
    return await _view(session, rt, budget)


async def delete(session: AsyncSession, rt: Services, principal: Principal, budget_id: str) -> BudgetView:
    """Remove the budget and its ledger; answers it as it was, with its spend until now."""
    principal.require("admin")
    budget = await repository.get(session, principal.org_id, budget_id)
    view = await _view(session, rt, budget)
    before = audited(budget)
    await repository.remove(session, budget)
    await record(
        session,
        rt,
        principal.org_id,
        actor_of(principal),
        "budget.deleted",
        "budget",
        budget_id,
        before=before,
    )
    rt.invalidate(session, budgets=True)
    return view


def audited(budget: Budget) -> dict[str, object]:
    """What an audit event shows of a budget (the amount in dollars, as the API gives it)."""
    return {
        "name": budget.name,
        "scope": budget.scope,
        "scope_id": budget.scope_id,
        "amount_usd": usd(budget.cap_micros),
        "period": budget.period,
        "action": budget.action,
        "thresholds": list(budget.thresholds),
    }
