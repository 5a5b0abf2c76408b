from __future__ import annotations

from typing import Any, Literal

from modelux_server.billing.catalog import LIMIT_NAMES, Plan
from modelux_server.kit.schemas import Body

Interval = Literal["monthly", "annual"]


class CheckoutCreate(Body):
    plan: str
    interval: Interval = "monthly"


class PortalCreate(Body):
    return_url: str | None = None


class ChangePlan(Body):
    plan: str
    interval: Interval = "monthly"


def render_plan(plan: Plan) -> dict[str, Any]:
    monthly, annual = plan.monthly_price_cents, plan.annual_price_cents
    saving = None
    if monthly and annual is not None:
        saving = monthly * 12 - annual
    return {
        "id": plan.id,
        "object": "plan",
        "name": plan.name,
        "description": plan.description,
        "self_serve": plan.self_serve,
        "prices": {
            "currency": "usd",
            "monthly_cents": monthly,
            "annual_cents": annual,
            "annual_saving_cents": saving,
            "custom": monthly is None,
        },
        "limits": {name: plan.limits[name] for name in LIMIT_NAMES},
        "features": sorted(plan.features),
    }
