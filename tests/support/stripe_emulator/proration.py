"""Time-based proration, the way Stripe's classic billing mode computes it.

A price change at instant ``t`` inside period ``[start, end)`` produces two lines:
a credit for the unused time on the old price and a debit for the remaining time on
the new one, both scaled by ``(end - t) / (end - start)`` and rounded to the nearest
minor unit (half away from zero). Prorating second by second is what makes "upgrade
on the last day" cheap, which billing code must cope with.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any


@dataclass(frozen=True)
class ProratedLine:
    amount: int  # minor units; negative for credits
    start: int
    end: int
    unused: bool  # True = credit for unused time on the old price


@dataclass(frozen=True)
class ItemProration:
    """One subscription item's proration: what an invoice line or invoice item is made of."""

    item_id: str | None  # None for an item the change adds (it has no id yet)
    price: dict[str, Any]
    quantity: int
    line: ProratedLine


def _round(value: Fraction) -> int:
    sign = -1 if value < 0 else 1
    magnitude = Decimal(abs(value.numerator)) / Decimal(value.denominator)
    return sign * int(magnitude.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def fraction_remaining(period_start: int, period_end: int, at: int) -> Fraction:
    length = period_end - period_start
    if length <= 0:
        return Fraction(0)
    remaining = min(max(period_end - at, 0), length)
    return Fraction(remaining, length)


def credit_unused(
    unit_amount: int, quantity: int, period_start: int, period_end: int, at: int
) -> ProratedLine:
    share = fraction_remaining(period_start, period_end, at)
    return ProratedLine(-_round(unit_amount * quantity * share), at, period_end, True)


def charge_remaining(
    unit_amount: int, quantity: int, period_start: int, period_end: int, at: int
) -> ProratedLine:
    share = fraction_remaining(period_start, period_end, at)
    return ProratedLine(_round(unit_amount * quantity * share), at, period_end, False)
