"""The billing API's bodies and how billing's results render, for the API, the dashboard and MCP.

Every surface renders a result here, so a tool answers exactly what its
endpoint answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from modelux_server.billing.checkout import CheckoutStarted, PortalOpened
from modelux_server.billing.processor import InvoiceView
from modelux_server.billing.subscriptions import PlanChangePreview
from modelux_server.billing.summary import BillingSummary, CurrentPlan, DormantItem, Period, UsageMeter
from modelux_server.kit.schemas import Body
from modelux_server.plans.catalog import LIMIT_NAMES, Catalog, Plan

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


def render_plans(catalog: Catalog) -> dict[str, Any]:
    """GET /plans: the whole catalog, in the list envelope (it is never paged)."""
    return {"data": [render_plan(p) for p in catalog.ordered()], "next_cursor": None, "has_more": False}


def render_summary(summary: BillingSummary) -> dict[str, Any]:
    custom = summary.custom_plan
    return {
        "plan": render_current_plan(summary.plan),
        "status": summary.status,
        "billing_mode": summary.billing_mode,
        "renewal_date": _iso(summary.renewal_date),
        "current_window": _period(summary.current_window),
        "meters": {name: _meter(meter) for name, meter in summary.meters.items()},
        "features": dict(summary.features),
        "billing_email": summary.billing_email,
        "tax_ids": [{"type": t.type, "value": t.value} for t in summary.tax_ids],
        "has_subscription": summary.has_subscription,
        "custom_plan": None
        if custom is None
        else {
            "id": custom.id,
            "version": custom.version,
            "data_residency": custom.data_residency,
            "invoicing": custom.invoicing,
            "sla_summary": custom.sla,
            **custom.terms,
            "support_channel": custom.support_channel,
            "invoices": list(custom.invoices),
            "contact": "Your account manager changes this plan; the self-serve plans do not apply.",
        },
        "dormant": [_dormant(item) for item in summary.dormant],
    }


def render_current_plan(plan: CurrentPlan) -> dict[str, Any]:
    return {"id": plan.id, "name": plan.name, "interval": plan.interval}


def render_checkout(started: CheckoutStarted) -> dict[str, Any]:
    return {"url": started.url, "id": started.id}


def render_portal(opened: PortalOpened) -> dict[str, Any]:
    return {"url": opened.url}


def _meter(meter: UsageMeter) -> dict[str, Any]:
    body: dict[str, Any] = {
        "limit": meter.limit,
        "used": meter.used,
        "percent": meter.percent,
        "unlimited": meter.unlimited,
    }
    if meter.window is not None:
        body["resets_at"] = _iso(meter.window.end)
        body["window"] = _period(meter.window)
    return body


def _dormant(item: DormantItem) -> dict[str, Any]:
    return {
        "kind": item.kind,
        "id": item.id,
        "slug": item.slug,
        "strategy": item.strategy,
        "reason": item.reason,
    }


def _period(period: Period) -> dict[str, str]:
    return {"start": _iso(period.start), "end": _iso(period.end)}


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def render_preview(preview: PlanChangePreview) -> dict[str, Any]:
    """POST /billing/change-plan/preview: what change-plan would charge or refund now."""
    return {
        "object": "plan_change_preview",
        "plan": {"id": preview.plan.id, "name": preview.plan.name, "interval": preview.interval},
        "currency": preview.currency,
        "lines": [{"description": text, "amount_cents": cents} for text, cents in preview.lines],
        "amount_due_cents": preview.amount_due,
        "credit_cents": preview.credit,
        "refund_cents": preview.refund,
        "features_removed": preview.dormant,
        "effective": "immediately",
    }


def render_invoice(invoice: InvoiceView) -> dict[str, Any]:
    return {
        "id": invoice.id,
        "object": "invoice",
        "number": invoice.number,
        "status": invoice.status,
        "created": _iso(invoice.created),
        "period": None
        if invoice.period_start is None or invoice.period_end is None
        else {"start": _iso(invoice.period_start), "end": _iso(invoice.period_end)},
        "currency": invoice.currency,
        "total_cents": invoice.total,
        "tax_cents": invoice.tax,
        "amount_due_cents": invoice.amount_due,
        "amount_paid_cents": invoice.amount_paid,
        "credited_cents": invoice.credited,
        "billing_reason": invoice.billing_reason,
        "hosted_invoice_url": invoice.hosted_invoice_url,
        "invoice_pdf": invoice.invoice_pdf,
    }
