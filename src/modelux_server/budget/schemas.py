"""Budget bodies and answers.

Money crosses the boundary as a JSON number of US dollars (`amount_usd`) and is
kept as integer micro-dollars (`cap_micros`). Only numbers are dollars: a string,
a boolean, NaN or an infinity is refused here; more than six decimals is refused
by the service (`service.cap_micros`), so what a caller sent is exactly what is stored.

The bodies refuse only what their published schema states. The rules no schema
states (six decimals, ascending thresholds, which scopes need a scope_id) are the
service's, checked after the caller is authenticated: a request that is valid by
the schema never gets a 422 before its 401.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from modelux_server.budget.periods import Period
from modelux_server.kit.schemas import WHOLE_NUMBER, Body, Update, iso
from modelux_server.models import Budget

MICROS = 1_000_000
MAX_USD = 1_000_000_000
DEFAULT_THRESHOLDS = (50, 80, 100)
MAX_THRESHOLDS = 10

Scope = Literal["organization", "project", "api_key"]
PeriodKind = Literal["daily", "weekly", "monthly", "billing"]
Action = Literal["block", "alert"]
SCOPES: tuple[str, ...] = ("organization", "project", "api_key")
PERIODS: tuple[str, ...] = ("daily", "weekly", "monthly", "billing")
ACTIONS: tuple[str, ...] = ("block", "alert")

Name = Annotated[str, Field(min_length=1, max_length=100)]
ScopeId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=40,
        description=(
            "The project's (proj_...) or API key's (key_...) id; required for those scopes. "
            "For `organization` it may be left out: it is the organization's own id."
        ),
    ),
]


def _usd(value: Any) -> Decimal:
    """A JSON number of dollars as an exact Decimal: > 0, <= MAX_USD, at most 6 decimals."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise PydanticCustomError("usd_type", "must be a number of US dollars, e.g. 250 or 12.5")
    try:
        # a float's shortest repr is the decimal text it was parsed from (<= 15 digits here)
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError):
        raise PydanticCustomError("usd_type", "must be a number of US dollars") from None
    if not amount.is_finite():
        raise PydanticCustomError("usd_finite", "must be a finite number")
    if amount <= 0:
        raise PydanticCustomError("usd_positive", "must be greater than 0")
    if amount > MAX_USD:
        raise PydanticCustomError("usd_too_large", f"must be at most {MAX_USD:,} US dollars")
    return amount


Usd = Annotated[
    Decimal,
    PlainValidator(_usd),
    WithJsonSchema(
        {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": MAX_USD,
            "description": "US dollars, at most 6 decimal places (a JSON number, not a string).",
            "examples": [250, 12.5],
        }
    ),
]

Percent = Annotated[int, Field(ge=1, le=100), WHOLE_NUMBER]


def _unique(values: list[int]) -> list[int]:
    # the schema's uniqueItems; the order is the service's rule
    if len(set(values)) != len(values):
        raise PydanticCustomError("thresholds_repeat", "must not repeat a percent, e.g. [50, 80, 100]")
    return values


Thresholds = Annotated[
    list[Percent],
    Field(
        min_length=1,
        max_length=MAX_THRESHOLDS,
        description=(
            "Percents of the amount (1-100, ascending, no repeats): one email each time spend "
            "reaches one in a period."
        ),
        json_schema_extra={"uniqueItems": True},
    ),
    AfterValidator(_unique),
]


class BudgetCreate(Body):
    name: Name
    scope: Scope
    scope_id: ScopeId | None = None
    amount_usd: Usd
    period: PeriodKind
    action: Action = "block"
    thresholds: Thresholds = Field(default_factory=lambda: list(DEFAULT_THRESHOLDS))


class BudgetUpdate(Update):
    # nothing may be cleared (null is refused); a scope change names its scope_id,
    # which an organization budget may leave out

    name: Name | None = None
    scope: Scope | None = None
    scope_id: ScopeId | None = None
    amount_usd: Usd | None = None
    period: PeriodKind | None = None
    action: Action | None = None
    thresholds: Thresholds | None = None


# ------------------------------------------------------------------- answers


def as_number(amount: Decimal) -> int | float:
    """A checked amount as the JSON number it came from (an MCP tool forwards it so)."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def usd(amount_micros: int) -> int | float:
    """Micro-dollars as a JSON number of dollars: whole dollars as an integer."""
    whole, rest = divmod(amount_micros, MICROS)
    return whole if rest == 0 else amount_micros / MICROS


@dataclass(frozen=True)
class Spend:
    """A budget's settled spend in one period."""

    period: Period
    spent_micros: int
    cap_micros: int

    @property
    def remaining_micros(self) -> int:
        return max(self.cap_micros - self.spent_micros, 0)

    @property
    def used_percent(self) -> float:
        return round(self.spent_micros * 100 / self.cap_micros, 2) if self.cap_micros > 0 else 0.0


@dataclass(frozen=True)
class BudgetView:
    budget: Budget
    spend: Spend


def render_spend(spend: Spend) -> dict[str, Any]:
    return {
        "spend_usd": usd(spend.spent_micros),
        "remaining_usd": usd(spend.remaining_micros),
        "used_percent": spend.used_percent,
        "period_start": iso(spend.period.start),
        "period_resets_at": iso(spend.period.end),
    }


def render(view: BudgetView) -> dict[str, Any]:
    b = view.budget
    return {
        "id": b.id,
        "object": "budget",
        "name": b.name,
        "scope": b.scope,
        "scope_id": b.scope_id,
        "amount_usd": usd(b.cap_micros),
        "period": b.period,
        "action": b.action,
        "thresholds": list(b.thresholds),
        "spend": render_spend(view.spend),
        "created_at": iso(b.created_at),
        "updated_at": iso(b.updated_at),
    }


def render_deleted(view: BudgetView) -> dict[str, Any]:
    return {**render(view), "deleted": True}
