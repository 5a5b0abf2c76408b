"""What the operator does to organizations: find them, look inside, move them between
plans, suspend them. Every change is recorded with the operator's name (admin/actions.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.admin import actions
from modelux_server.admin.auth import Operator
from modelux_server.billing import repository as billing_repository
from modelux_server.billing.operator import set_plan
from modelux_server.billing.service import org_plan, request_window
from modelux_server.billing.summary import billing_summary
from modelux_server.enterprise import invoicing, plans
from modelux_server.enterprise.schemas import PlanInput
from modelux_server.enterprise.terms import one_line
from modelux_server.errors import Conflict, NotFound, ValidationFailed
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.models import (
    CustomPlan,
    Membership,
    OperatorAction,
    Organization,
    PlanChange,
    PlanState,
    User,
)
from modelux_server.services import Services

STATUSES = ("active", "suspended", "past_due")


def _like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _owners() -> Select[Any]:
    return (
        select(Membership.org_id).join(User, User.id == Membership.user_id).where(Membership.role == "owner")
    )


async def resolve(session: AsyncSession, ref: str) -> str:
    """An organization by id, exact name (any case) or an owner's email: its id, or 404,
    or 409 `ambiguous_organization` naming the candidates."""
    ref = ref.strip()
    if not ref or "\x00" in ref or len(ref) > 320:
        raise ValidationFailed("Give an organization id, name or owner email.", code="invalid_organization")
    if await session.get(Organization, ref) is not None:
        return ref
    by_name = select(Organization.id).where(func.lower(Organization.name) == ref.lower())
    by_owner = _owners().where(func.lower(User.email) == ref.lower())
    found: list[str] = sorted(set(await session.scalars(by_name)) | set(await session.scalars(by_owner)))
    if not found:
        raise NotFound(f"No organization matches '{ref}'.", code="organization_not_found")
    if len(found) > 1:
        raise Conflict(
            f"'{ref}' matches {len(found)} organizations ({', '.join(found[:10])}); give the id.",
            code="ambiguous_organization",
            candidates=found[:50],
        )
    return found[0]


@dataclass(frozen=True)
class OrgRow:
    org: Organization
    state: PlanState
    plan_name: str
    owners: list[str]
    requests_used: int
    requests_limit: int | None


async def _row(session: AsyncSession, rt: Services, org: Organization) -> OrgRow:
    current = await org_plan(session, rt, org.id)
    window = request_window(current.state, rt.clock.now())
    owners = list(
        await session.scalars(
            select(User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.org_id == org.id, Membership.role == "owner")
            .order_by(User.email)
        )
    )
    return OrgRow(
        org,
        current.state,
        current.entitlements.plan.name,
        owners,
        int(await rt.counter.used(org.id, window)),
        current.entitlements.limit("monthly_requests"),
    )


async def list_orgs(
    session: AsyncSession,
    rt: Services,
    page: PageRequest,
    *,
    search: str | None = None,
    plan: str | None = None,
    status: str | None = None,
) -> Page[OrgRow]:
    """Organizations in id order (oldest first), narrowed by a search over id, name and
    owner email, by plan id, and by status (active, suspended, past_due)."""
    stmt = select(Organization).join(PlanState, PlanState.org_id == Organization.id)
    if search:
        if "\x00" in search or len(search) > 320:
            raise ValidationFailed("search is too long or holds NUL", code="invalid_search", param="search")
        pattern = _like(search.lower())
        stmt = stmt.where(
            or_(
                func.lower(Organization.id).like(pattern, escape="\\"),
                func.lower(Organization.name).like(pattern, escape="\\"),
                Organization.id.in_(_owners().where(func.lower(User.email).like(pattern, escape="\\"))),
            )
        )
    if plan:
        if plan not in rt.catalog.plans:
            raise ValidationFailed(f"unknown plan '{plan[:40]}'", code="unknown_plan", param="plan")
        stmt = stmt.where(PlanState.plan_id == plan)
    if status:
        if status not in STATUSES:
            raise ValidationFailed(f"status is one of {', '.join(STATUSES)}", param="status")
        if status == "suspended":
            stmt = stmt.where(Organization.suspended_at.is_not(None))
        elif status == "past_due":
            stmt = stmt.where(PlanState.status == "past_due")
        else:
            stmt = stmt.where(Organization.suspended_at.is_(None), PlanState.status != "past_due")
    if page.cursor:
        stmt = stmt.where(Organization.id > page.cursor)
    orgs = list(await session.scalars(stmt.order_by(Organization.id).limit(page.limit + 1)))
    more = len(orgs) > page.limit
    orgs = orgs[: page.limit]
    rows = [await _row(session, rt, org) for org in orgs]
    return Page(items=rows, next_cursor=orgs[-1].id if more and orgs else None)


def render_row(row: OrgRow) -> dict[str, Any]:
    return {
        "id": row.org.id,
        "object": "organization",
        "name": row.org.name,
        "owners": row.owners,
        "plan": {
            "id": row.state.plan_id,
            "name": row.plan_name,
            "interval": row.state.interval,
            "enterprise_plan_id": row.state.custom_plan_id,
        },
        "status": "suspended" if row.org.suspended_at else row.state.status,
        "suspended": row.org.suspended_at is not None,
        "usage": {"monthly_requests": {"used": row.requests_used, "limit": row.requests_limit}},
        "created_at": row.org.created_at.isoformat(),
    }


async def detail(session: AsyncSession, rt: Services, org_id: str) -> dict[str, Any]:
    """One organization whole: plan, usage, subscription, invoices, plan changes, the
    Enterprise plan and the operator's actions on it."""
    from modelux_server.billing.schemas import render_summary
    from modelux_server.enterprise import invoices
    from modelux_server.enterprise.schemas import render_version

    org = await session.get(Organization, org_id)
    if org is None:
        raise NotFound(f"No organization '{org_id}'.", code="organization_not_found")
    row = await _row(session, rt, org)
    summary = await billing_summary(session, rt, org_id)
    custom = await billing_repository.get_custom_plan(session, row.state.custom_plan_id)
    changes = list(
        await session.scalars(
            select(PlanChange)
            .where(PlanChange.org_id == org_id)
            .order_by(PlanChange.created_at.desc(), PlanChange.id.desc())
            .limit(50)
        )
    )
    now = rt.clock.now()
    return {
        **render_row(row),
        "suspended_at": org.suspended_at.isoformat() if org.suspended_at else None,
        "suspended_reason": org.suspended_reason,
        "billing": render_summary(summary),
        "subscription": {
            "status": row.state.status,
            "stripe_customer_id": row.state.stripe_customer_id,
            "stripe_subscription_id": row.state.stripe_subscription_id
            or (custom.stripe_subscription_id if custom else None),
            "current_period_end": row.state.current_period_end.isoformat()
            if row.state.current_period_end
            else None,
        },
        "enterprise_plan": render_version(custom) if custom else None,
        "invoices": [invoices.render(i, now) for i in await invoices.for_org(session, org_id)],
        "plan_changes": [
            {
                "id": c.id,
                "from_plan": c.from_plan,
                "to_plan": c.to_plan,
                "from_interval": c.from_interval,
                "to_interval": c.to_interval,
                "source": c.source,
                "actor": c.actor,
                "created_at": c.created_at.isoformat(),
            }
            for c in changes
        ],
        "operator_actions": [render_action(a) for a in await actions.for_org(session, org_id)],
    }


def render_action(a: OperatorAction) -> dict[str, Any]:
    return {
        "id": a.id,
        "operator": a.operator,
        "via": a.via,
        "action": a.action,
        "org_id": a.org_id,
        "detail": a.detail,
        "created_at": a.created_at.isoformat(),
    }


async def suspend(
    session: AsyncSession, rt: Services, operator: Operator, org_id: str, reason: str | None
) -> Organization:
    """Stop the organization's proxy and API calls (403 `organization_suspended`); nothing
    is deleted and unsuspending restores everything as it was."""
    org = await _locked_org(session, org_id)
    if reason is not None:
        try:
            reason = one_line(reason, "reason", 500)
        except ValueError as exc:
            raise ValidationFailed(str(exc), param="reason") from None
    if org.suspended_at is None:
        org.suspended_at = rt.clock.now()
        org.suspended_reason = reason
        await actions.record(session, rt, operator, "organization.suspended", org_id, reason=reason)
        rt.invalidate(session, org_id=org_id)
    return org


async def unsuspend(session: AsyncSession, rt: Services, operator: Operator, org_id: str) -> Organization:
    org = await _locked_org(session, org_id)
    if org.suspended_at is not None:
        org.suspended_at = None
        org.suspended_reason = None
        await actions.record(session, rt, operator, "organization.unsuspended", org_id)
        rt.invalidate(session, org_id=org_id)
    return org


async def _locked_org(session: AsyncSession, org_id: str) -> Organization:
    # the plan state row is the organization's lock (models/plan_state.py)
    await billing_repository.get_plan_state(session, org_id, lock=True)
    org = await session.get(Organization, org_id)
    if org is None:
        raise NotFound(f"No organization '{org_id}'.", code="organization_not_found")
    return org


async def move_plan(
    session: AsyncSession, rt: Services, operator: Operator, org_id: str, plan_id: str, interval: str
) -> PlanChange | None:
    """Move an organization to a self-serve catalog plan. An Enterprise plan it had ends
    (its invoice subscription is canceled in Stripe); an organization paying through a
    self-serve Stripe subscription changes plan through Stripe, not here."""
    state = await billing_repository.get_plan_state(session, org_id, lock=True)
    if state is None:
        raise NotFound(f"No organization '{org_id}'.", code="organization_not_found")
    if state.custom_plan_id is None and state.stripe_subscription_id is not None:
        raise Conflict(
            "This organization pays through a Stripe subscription: its plan follows that "
            "subscription (change or cancel it in Stripe, or have the customer do it).",
            code="organization_has_subscription",
        )
    previous = await session.get(CustomPlan, state.custom_plan_id) if state.custom_plan_id else None
    change = await set_plan(session, rt, org_id, plan_id, interval, actor=operator.actor)
    if previous is not None:
        await invoicing.on_ended(session, rt, state, previous)
    if change is not None:
        await actions.record(
            session, rt, operator, "plan.changed", org_id, plan={"from": change.from_plan, "to": plan_id}
        )
    return change


async def create_enterprise_plan(
    session: AsyncSession, rt: Services, operator: Operator, org_id: str, given: PlanInput
) -> CustomPlan:
    """Give the organization an Enterprise plan, on the record."""
    plan = await plans.create_plan(session, rt, org_id, given, actor=operator.actor)
    await actions.record(session, rt, operator, "enterprise_plan.created", org_id, version=plan.version)
    return plan


async def edit_enterprise_plan(
    session: AsyncSession, rt: Services, operator: Operator, org_id: str, given: PlanInput
) -> tuple[CustomPlan, list[dict[str, Any]]]:
    """A new version of the organization's Enterprise plan, on the record with its diff."""
    plan = await plans.edit_plan(session, rt, org_id, given, actor=operator.actor)
    versions = await plans.history(session, org_id)
    changes = versions[0][1] if versions else []
    await actions.record(
        session, rt, operator, "enterprise_plan.edited", org_id, version=plan.version, changes=changes
    )
    return plan, changes
