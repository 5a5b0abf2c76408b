"""The billing summary: everything Settings -> Billing shows, as typed values.

One operation (`billing_summary`) for the API, the dashboard and MCP;
billing/schemas.py renders it to the API's JSON. Items a plan switches off
(dormant items) belong to other domains: they register a `DormantSource`
at assembly (`Services.dormant_sources`, filled in assembly.py), so billing
imports none of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing import repository
from modelux_server.billing.processor import TaxId
from modelux_server.billing.service import monthly_requests_used, org_plan, request_window
from modelux_server.models import CustomPlan
from modelux_server.plans.catalog import FEATURES, LIMIT_NAMES
from modelux_server.plans.entitlements import Entitlements
from modelux_server.services import Services


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class UsageMeter:
    """One limit of the plan and how much of it is used."""

    limit: int | None  # None: unlimited
    used: int
    window: Period | None = None  # only for limits counted per window (monthly requests)

    @property
    def unlimited(self) -> bool:
        return self.limit is None

    @property
    def percent(self) -> float | None:
        return None if not self.limit else round(100 * self.used / self.limit, 1)

    @property
    def resets_at(self) -> datetime | None:
        return None if self.window is None else self.window.end


@dataclass(frozen=True)
class CurrentPlan:
    id: str
    name: str
    interval: str


@dataclass(frozen=True)
class CustomPlanTerms:
    """What an Enterprise agreement adds beyond limits and features: its version, the
    negotiated terms as shown (enterprise/terms.py `render_terms`) and its invoices."""

    id: str
    version: int
    data_residency: str | None
    invoicing: str | None
    support_channel: str | None
    sla: str | None  # the SLA in one line ("99.95% uptime")
    terms: Mapping[str, Any]
    invoices: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class DormantItem:
    """Something kept but switched off by the plan; it works again on a plan that includes it.

    Today only routing configs go dormant, hence `slug` and `strategy`.
    """

    kind: str
    id: str
    slug: str
    strategy: str
    reason: str


# (session, services, org_id, the entitlements to judge by) -> that domain's dormant items
DormantSource = Callable[[AsyncSession, Services, str, Entitlements], Awaitable[Sequence[DormantItem]]]


@dataclass(frozen=True)
class BillingSummary:
    plan: CurrentPlan
    status: str
    billing_mode: str
    renewal_date: datetime
    current_window: Period
    meters: Mapping[str, UsageMeter]  # by limit name, in LIMIT_NAMES order
    features: Mapping[str, bool]  # every catalog feature, in FEATURES order
    billing_email: str | None
    tax_ids: Sequence[TaxId]  # the Stripe customer's, kept current by webhooks
    has_subscription: bool
    custom_plan: CustomPlanTerms | None
    dormant: Sequence[DormantItem]


async def billing_summary(session: AsyncSession, rt: Services, org_id: str) -> BillingSummary:
    """Everything Settings -> Billing shows, the same for API, dashboard and MCP."""
    current = await org_plan(session, rt, org_id)
    state, ent = current.state, current.entitlements
    window = request_window(state, rt.clock.now())
    period = Period(window.start, window.end)
    meters: dict[str, UsageMeter] = {}
    for name in LIMIT_NAMES:
        if name == "monthly_requests":
            used = await monthly_requests_used(rt, org_id, window)
            meters[name] = UsageMeter(ent.limit(name), used, window=period)
        else:
            used = await repository.count_resource(session, org_id, name)
            meters[name] = UsageMeter(ent.limit(name), used)
    dormant = await dormant_items(session, rt, org_id, ent)
    custom = await repository.get_custom_plan(session, state.custom_plan_id)
    custom_terms = None if custom is None else await _custom_terms(session, rt, custom)
    return BillingSummary(
        plan=CurrentPlan(ent.plan.id, ent.plan.name, state.interval),
        status=state.status,
        billing_mode=rt.settings.billing_mode,
        renewal_date=state.current_period_end or window.end,
        current_window=period,
        meters=meters,
        features={feature: ent.has(feature) for feature in FEATURES},
        billing_email=state.billing_email,
        tax_ids=[TaxId(t.get("type", ""), t.get("value", "")) for t in state.tax_ids or []],
        has_subscription=state.stripe_subscription_id is not None,
        custom_plan=custom_terms,
        dormant=dormant,
    )


async def _custom_terms(session: AsyncSession, rt: Services, custom: CustomPlan) -> CustomPlanTerms:
    from modelux_server.enterprise import invoices
    from modelux_server.enterprise.terms import Terms, render_terms

    terms = render_terms(Terms.load(custom.terms))
    now = rt.clock.now()
    return CustomPlanTerms(
        id=custom.id,
        version=custom.version,
        data_residency=custom.data_residency,
        invoicing=custom.invoicing,
        support_channel=terms["support_channel"] or custom.support_channel,
        sla=custom.sla,
        terms=terms,
        invoices=[invoices.render(i, now) for i in await invoices.for_org(session, custom.org_id, limit=24)],
    )


async def dormant_items(
    session: AsyncSession, rt: Services, org_id: str, ent: Entitlements
) -> list[DormantItem]:
    """What `ent` would switch off in this organization (its current plan's, or a target's)."""
    items: list[DormantItem] = []
    for source in rt.dormant_sources:
        items.extend(await source(session, rt, org_id, ent))
    return items
