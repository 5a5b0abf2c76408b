"""The one place that answers "may this organization do X?".

Limits and features both come from the organization's effective plan: the
catalog plan, or its custom Enterprise plan. A "no" is always one of the two
402 bodies of the contract, with `upgrade` pointing at the plan that says yes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from modelux_server.errors import FeatureNotInPlan, PlanLimitExceeded
from modelux_server.models import CustomPlan
from modelux_server.plans.catalog import MONTHLY_LIMITS, Catalog, Plan

_SINGULAR = {"projects": "project", "api_keys": "API key", "provider_credentials": "provider credential"}
_LIMIT_WORDS = {
    "monthly_requests": "monthly requests",
    "projects": "projects",
    "api_keys": "API keys",
    "provider_credentials": "provider credentials",
}


def effective_plan(catalog: Catalog, plan_id: str, custom: CustomPlan | None) -> Plan:
    """The plan that governs an organization right now."""
    if custom is not None:
        base = catalog.get(plan_id)
        return Plan(
            id=plan_id,
            name=custom.name,
            order=99,
            self_serve=False,
            monthly_price_cents=None,
            annual_price_cents=None,
            limits={name: custom.limits.get(name) for name in catalog.default_plan.limits},
            features=frozenset(custom.features),
            # per-key rate limits are the catalog plan's it is made from (Enterprise)
            rate_limits=base.rate_limits if base is not None else {},
            audit_retention_days=base.audit_retention_days if base is not None else 0,
        )
    plan = catalog.get(plan_id)
    # a plan removed from the catalog falls back to the default rather than
    # locking the organization out; the operator sees it in `admin` output
    return plan if plan is not None else catalog.default_plan


@dataclass(frozen=True)
class Entitlements:
    plan: Plan
    catalog: Catalog
    public_url: str

    def limit(self, name: str) -> int | None:
        return self.plan.limit(name)

    def has(self, feature: str) -> bool:
        return feature in self.plan.features

    def ensure_room(
        self,
        name: str,
        used: int,
        *,
        now: datetime | None = None,
        resets_at: datetime | None = None,
    ) -> None:
        """Raise the limit 402 unless one more `name` fits under the plan."""
        limit = self.limit(name)
        if limit is not None and used >= limit:
            raise self.limit_error(name, used, now=now, resets_at=resets_at)

    def require(self, feature: str) -> None:
        if not self.has(feature):
            raise self.feature_error(feature)

    def upgrade_url(self, plan_id: str) -> str:
        return f"{self.public_url}/settings/billing?plan={plan_id}"

    def limit_error(
        self,
        name: str,
        used: int,
        *,
        now: datetime | None = None,
        resets_at: datetime | None = None,
    ) -> PlanLimitExceeded:
        limit = self.limit(name)
        target = self.catalog.cheapest_with_higher_limit(name, limit, above=self.plan)
        words = _LIMIT_WORDS.get(name, name)
        monthly = name in MONTHLY_LIMITS
        if monthly:
            message = f"This organization has used all {limit:,} {words} of the {self.plan.name} plan"
            message += f" for this period; the counter resets at {_iso(resets_at)}." if resets_at else "."
        else:
            noun = _SINGULAR.get(name, words) if limit == 1 else words
            message = f"The {self.plan.name} plan allows {limit:,} {noun}; this organization has {used:,}."
        if target is not None:
            message += f" Upgrade to {target.name} for more."
        else:
            message += " Contact sales for a custom plan."
        limit_body: dict[str, object] = {"name": name, "limit": limit, "used": used}
        if monthly and resets_at is not None:
            limit_body["resets_at"] = _iso(resets_at)
        error = PlanLimitExceeded(
            message,
            code="monthly_requests_exhausted" if monthly else "resource_limit_reached",
            limit=limit_body,
            plan=self.plan.id,
            upgrade=None if target is None else {"plan": target.id, "url": self.upgrade_url(target.id)},
        )
        if monthly and resets_at is not None and now is not None:
            seconds = max(1, math.ceil((resets_at - now).total_seconds()))
            error.headers["Retry-After"] = str(seconds)
        return error

    def feature_error(self, feature: str) -> FeatureNotInPlan:
        target = self.catalog.cheapest_with_feature(feature)
        label = feature.replace("_", " ")
        message = f"The {self.plan.name} plan does not include {label}."
        if target is not None:
            message += f" It is available on {target.name}" + (
                "." if target.self_serve else "; contact sales."
            )
        return FeatureNotInPlan(
            message,
            feature=feature,
            plan=self.plan.id,
            upgrade=None if target is None else {"plan": target.id, "url": self.upgrade_url(target.id)},
        )


def _iso(when: datetime | None) -> str:
    if when is None:
        return ""
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
