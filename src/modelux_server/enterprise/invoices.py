"""Enterprise invoices: Stripe's (mirrored by enterprise/invoicing.py) and the ones an
operator records by hand in manual billing mode. The same rows feed the operator API
and the customer's billing page."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.admin import actions
from modelux_server.admin.auth import Operator
from modelux_server.enterprise.terms import amount_text, cents
from modelux_server.errors import NotFound, ValidationFailed
from modelux_server.kit.ids import new_id
from modelux_server.models import EnterpriseInvoice, PlanState


class InvoiceRecord(BaseModel):
    """An invoice the operator sent outside any payment processor."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    amount: str | int | float
    currency: str = Field("usd", pattern=r"^[A-Za-z]{3}$")
    number: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[\x20-\x7e]+$")
    status: Literal["open", "paid", "void", "uncollectible"] = "open"
    due: date | None = None
    po_number: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[\x20-\x7e]+$")
    period_start: date | None = None
    period_end: date | None = None

    @field_validator("amount")
    @classmethod
    def _amount(cls, value: str | int | float) -> str:
        cents(value, "amount")
        return str(value)


class InvoiceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["open", "paid", "void", "uncollectible"]


def _at(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(), tzinfo=UTC)


def shown_status(invoice: EnterpriseInvoice, now: datetime) -> str:
    """Stripe keeps an unpaid invoice `open` past its due date; people call that past due."""
    if invoice.status == "open" and invoice.due_at is not None and invoice.due_at < now:
        return "past_due"
    return invoice.status


def render(invoice: EnterpriseInvoice, now: datetime) -> dict[str, Any]:
    return {
        "id": invoice.id,
        "object": "invoice",
        "org_id": invoice.org_id,
        "source": invoice.source,
        "number": invoice.number,
        "status": shown_status(invoice, now),
        "amount": amount_text(invoice.amount_cents),
        "currency": invoice.currency,
        "due_at": invoice.due_at.isoformat() if invoice.due_at else None,
        "paid_at": invoice.paid_at.isoformat() if invoice.paid_at else None,
        "hosted_invoice_url": invoice.hosted_url,
        "po_number": invoice.po_number,
        "period_start": invoice.period_start.isoformat() if invoice.period_start else None,
        "period_end": invoice.period_end.isoformat() if invoice.period_end else None,
        "created_at": invoice.created_at.isoformat(),
    }


async def for_org(session: AsyncSession, org_id: str, limit: int = 100) -> list[EnterpriseInvoice]:
    rows = await session.scalars(
        select(EnterpriseInvoice)
        .where(EnterpriseInvoice.org_id == org_id)
        .order_by(EnterpriseInvoice.created_at.desc(), EnterpriseInvoice.id.desc())
        .limit(limit)
    )
    return list(rows)


async def record_manual(
    session: AsyncSession, rt: Any, operator: Operator, org_id: str, given: InvoiceRecord
) -> EnterpriseInvoice:
    """Manual billing: note an invoice the operator sent."""
    state = await session.get(PlanState, org_id)
    if state is None:
        raise NotFound(f"No organization '{org_id}'.", code="organization_not_found")
    if rt.settings.billing_mode != "manual":
        raise ValidationFailed(
            "Invoices are recorded by hand only in manual billing mode; with Stripe they come "
            "from the Enterprise plan's invoice payment terms.",
            code="invoices_come_from_stripe",
        )
    if given.period_start and given.period_end and given.period_end <= given.period_start:
        raise ValidationFailed("period_end must be after period_start", param="period_end")
    now = rt.clock.now()
    invoice = EnterpriseInvoice(
        id=new_id("einv"),
        org_id=org_id,
        custom_plan_id=state.custom_plan_id,
        source="manual",
        number=given.number,
        status=given.status,
        amount_cents=cents(given.amount, "amount"),
        currency=given.currency.lower(),
        due_at=_at(given.due),
        paid_at=now if given.status == "paid" else None,
        po_number=given.po_number,
        period_start=_at(given.period_start),
        period_end=_at(given.period_end),
        created_at=now,
        updated_at=now,
    )
    session.add(invoice)
    await actions.record(
        session,
        rt,
        operator,
        "invoice.recorded",
        org_id,
        invoice_id=invoice.id,
        amount=amount_text(invoice.amount_cents),
    )
    return invoice


async def update_manual(
    session: AsyncSession, rt: Any, operator: Operator, org_id: str, invoice_id: str, given: InvoiceUpdate
) -> EnterpriseInvoice:
    """Manual billing: mark a recorded invoice paid, void or uncollectible."""
    invoice = await session.get(EnterpriseInvoice, invoice_id)
    if invoice is None or invoice.org_id != org_id:
        raise NotFound(f"No invoice '{invoice_id}' for '{org_id}'.", code="invoice_not_found")
    if invoice.source != "manual":
        raise ValidationFailed(
            "A Stripe invoice's status comes from Stripe.", code="invoices_come_from_stripe"
        )
    if invoice.status == given.status:
        return invoice  # nothing to change, nothing to record
    now = rt.clock.now()
    before = invoice.status
    invoice.status = given.status
    invoice.paid_at = now if given.status == "paid" else None
    invoice.updated_at = now
    await actions.record(
        session,
        rt,
        operator,
        "invoice.updated",
        org_id,
        invoice_id=invoice.id,
        status={"from": before, "to": given.status},
    )
    return invoice
