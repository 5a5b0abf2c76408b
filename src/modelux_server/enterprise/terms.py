"""An Enterprise plan's commercial terms: what was negotiated, validated and rendered.

Stored as one JSON object on each plan version (`custom_plans.terms`), in the shape
`Terms.model_dump(mode="json")` gives. Money is integer minor units (cents) with an
ISO 4217 currency; the API takes and shows decimal amounts ("12000.00").
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modelux_server.errors import ValidationFailed
from modelux_server.organization.service import normalize_email

# the price's billing interval -> Stripe's (interval, interval_count)
PRICE_INTERVALS: dict[str, tuple[str, int]] = {
    "monthly": ("month", 1),
    "quarterly": ("month", 3),
    "annual": ("year", 1),
}
SEVERITIES = ("sev1", "sev2", "sev3", "sev4")
_CURRENCY = re.compile(r"^[a-z]{3}$")
_MAX_CENTS = 10**13  # a hundred billion in major units: past any contract


def one_line(value: str, what: str, limit: int) -> str:
    """Operator text shown to customers: one line, printable, bounded."""
    value = value.strip()
    if not value or len(value) > limit:
        raise ValueError(f"{what} must be 1 to {limit} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{what} must not contain control characters")
    return value


def cents(raw: Any, what: str) -> int:
    """'12000', 12000.5, '12,000.50' -> cents; at most two decimals, not negative."""
    if isinstance(raw, bool):
        raise ValueError(f"{what} must be an amount")
    try:
        amount = Decimal(str(raw).replace(",", "").replace("_", ""))
    except InvalidOperation:
        raise ValueError(f"{what} must be an amount such as 12000 or 12000.50") from None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"{what} must be a non-negative amount with at most two decimals")
    value = int(amount * 100)
    if value > _MAX_CENTS:
        raise ValueError(f"{what} is too large")
    return value


def amount_text(value: int | None) -> str | None:
    return None if value is None else f"{value // 100}.{value % 100:02d}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Price(_Strict):
    """The negotiated price: `amount` per `interval`, with an optional minimum commitment."""

    amount_cents: int = Field(ge=0, le=_MAX_CENTS)
    currency: str = "usd"
    interval: Literal["monthly", "quarterly", "annual"] = "annual"
    minimum_commitment_cents: int | None = Field(None, ge=0, le=_MAX_CENTS)

    @model_validator(mode="before")
    @classmethod
    def _amounts(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if "amount" in data:
                data["amount_cents"] = cents(data.pop("amount"), "price.amount")
            if "minimum_commitment" in data:
                raw = data.pop("minimum_commitment")
                data["minimum_commitment_cents"] = (
                    None if raw is None else cents(raw, "price.minimum_commitment")
                )
        return data

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        value = value.lower()
        if not _CURRENCY.match(value):
            raise ValueError("currency must be a three-letter ISO 4217 code such as usd")
        return value


class Contract(_Strict):
    """The contract term. At `end` the plan renews (`auto_renew`) or the organization moves
    to `end_plan`; `notice_days` is the notice either side must give not to renew."""

    start: date
    end: date | None = None
    auto_renew: bool = False
    notice_days: int = Field(30, ge=0, le=365)
    end_plan: str = "free"

    @model_validator(mode="after")
    def _order(self) -> Contract:
        if self.end is not None and self.end <= self.start:
            raise ValueError("contract.end must be after contract.start")
        return self


class PaymentTerms(_Strict):
    """Card on file (self-serve style) or invoices payable within `net_days`."""

    method: Literal["card", "invoice"] = "invoice"
    net_days: int = Field(30, ge=0, le=120)
    po_number: str | None = None

    @field_validator("po_number")
    @classmethod
    def _po(cls, value: str | None) -> str | None:
        return None if value is None else one_line(value, "payment.po_number", 100)


class BillingContact(_Strict):
    name: str | None = None
    email: str

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        try:
            return normalize_email(value)
        except ValidationFailed as exc:
            raise ValueError(f"billing_contact.email: {exc.message}") from None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else one_line(value, "billing_contact.name", 200)


class Sla(_Strict):
    """Uptime target (percent, e.g. 99.9) and first-response times by severity (minutes)."""

    uptime_percent: Decimal = Field(ge=Decimal("90"), le=Decimal("100"), max_digits=6, decimal_places=3)
    response_minutes: dict[str, int] = Field(default_factory=dict)

    @field_validator("response_minutes")
    @classmethod
    def _severities(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = [k for k in value if k not in SEVERITIES]
        if unknown:
            raise ValueError(
                f"response_minutes: unknown severity {unknown[0]!r} (known: {', '.join(SEVERITIES)})"
            )
        if any(not 1 <= minutes <= 60 * 24 * 30 for minutes in value.values()):
            raise ValueError("response_minutes: each time is 1 minute to 30 days")
        return {k: value[k] for k in SEVERITIES if k in value}


class Terms(_Strict):
    """Everything beyond limits and features; each part optional."""

    price: Price | None = None
    contract: Contract | None = None
    payment: PaymentTerms | None = None
    billing_contact: BillingContact | None = None
    support_channel: str | None = None
    sla: Sla | None = None

    @field_validator("support_channel")
    @classmethod
    def _support(cls, value: str | None) -> str | None:
        return None if value is None else one_line(value, "support_channel", 500)

    @model_validator(mode="after")
    def _invoice_needs(self) -> Terms:
        if self.payment is not None and self.payment.method == "invoice":
            if self.price is None:
                raise ValueError("invoice payment terms need a price to invoice")
            if self.billing_contact is None:
                raise ValueError("invoice payment terms need a billing_contact to send invoices to")
        return self

    @classmethod
    def load(cls, raw: dict[str, Any] | None) -> Terms:
        return cls.model_validate(raw or {})

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @property
    def invoiced(self) -> bool:
        return self.payment is not None and self.payment.method == "invoice"


def render_terms(terms: Terms) -> dict[str, Any]:
    """The terms as the APIs show them (amounts as decimal strings)."""
    price = terms.price
    return {
        "price": None
        if price is None
        else {
            "amount": amount_text(price.amount_cents),
            "currency": price.currency,
            "interval": price.interval,
            "minimum_commitment": amount_text(price.minimum_commitment_cents),
        },
        "contract": None if terms.contract is None else terms.contract.model_dump(mode="json"),
        "payment": None if terms.payment is None else terms.payment.model_dump(mode="json"),
        "billing_contact": None
        if terms.billing_contact is None
        else terms.billing_contact.model_dump(mode="json"),
        "support_channel": terms.support_channel,
        "sla": None
        if terms.sla is None
        else {
            "uptime_percent": str(terms.sla.uptime_percent),
            "response_minutes": terms.sla.response_minutes,
        },
    }


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay whole (features are compared as sets)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """What changed between two rendered plan versions, field by field."""
    old, new = flatten(before), flatten(after)
    changes: list[dict[str, Any]] = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, list) or isinstance(b, list):
            gone, added = sorted(set(a or []) - set(b or [])), sorted(set(b or []) - set(a or []))
            if gone or added:
                changes.append({"field": key, "added": added, "removed": gone})
            continue
        changes.append({"field": key, "from": a, "to": b})
    return changes
