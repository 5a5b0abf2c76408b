"""The operator's Enterprise plan input, and how a plan version is shown."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelux_server.enterprise.terms import (
    BillingContact,
    Contract,
    PaymentTerms,
    Price,
    Sla,
    Terms,
    render_terms,
)
from modelux_server.models import CustomPlan
from modelux_server.plans.catalog import FEATURES, LIMIT_NAMES, UNLIMITED

TERM_FIELDS = ("price", "contract", "payment", "billing_contact", "support_channel", "sla")


class PlanInput(BaseModel):
    """An Enterprise plan as the operator gives it. On create, limits not given are
    unlimited and features default to the catalog's Enterprise plan; on edit, only what is
    given changes (a nested object such as `price` is replaced whole; null removes it)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(None, min_length=1, max_length=200)
    limits: dict[str, int | str | None] | None = None
    features: list[str] | None = None
    region: str | None = Field(None, min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9-]*$")
    price: Price | None = None
    contract: Contract | None = None
    payment: PaymentTerms | None = None
    billing_contact: BillingContact | None = None
    support_channel: str | None = None
    sla: Sla | None = None

    @field_validator("limits")
    @classmethod
    def _limits(cls, value: dict[str, int | str | None] | None) -> dict[str, int | str | None] | None:
        if value is None:
            return None
        for name, limit in value.items():
            if name not in LIMIT_NAMES:
                raise ValueError(f"unknown limit {name!r} (known: {', '.join(LIMIT_NAMES)})")
            if isinstance(limit, bool) or not (
                limit is None or limit == UNLIMITED or (isinstance(limit, int) and 0 <= limit <= 10**15)
            ):
                raise ValueError(f"limits.{name} must be a whole number or 'unlimited'")
        return value

    @field_validator("features")
    @classmethod
    def _features(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        unknown = [f for f in value if f not in FEATURES]
        if unknown:
            raise ValueError(f"unknown feature {unknown[0]!r} (known: {', '.join(FEATURES)})")
        return sorted(set(value))


def limit_values(raw: dict[str, int | str | None]) -> dict[str, int | None]:
    return {name: None if value in (None, UNLIMITED) else int(value) for name, value in raw.items()}


def terms_of(plan: CustomPlan) -> Terms:
    return Terms.load(plan.terms)


def render_version(plan: CustomPlan) -> dict[str, Any]:
    """One plan version, as the operator API and the customer's billing view show it."""
    return {
        "id": plan.id,
        "object": "enterprise_plan",
        "org_id": plan.org_id,
        "version": plan.version,
        "name": plan.name,
        "limits": {name: plan.limits.get(name) for name in LIMIT_NAMES},
        "features": sorted(plan.features),
        "region": plan.data_residency,
        **render_terms(terms_of(plan)),
        "created_at": plan.created_at.isoformat(),
        "created_by": plan.actor,
    }


def comparable(plan: CustomPlan) -> dict[str, Any]:
    """A version's content, without what every version differs in (id, version, when, who)."""
    shown = render_version(plan)
    for key in ("id", "object", "org_id", "version", "created_at", "created_by"):
        shown.pop(key)
    return shown
