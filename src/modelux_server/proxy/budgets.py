"""Spend budgets on the request path: the worst-case cost, the hold, the settlement.

Before a request is counted, its cost is bounded from above and that bound is held
against every blocking budget it falls under (budget/meter.py), atomically across
processes. The bound, per target (the most expensive target of a fallback, the sum
of an ensemble's members):

    prompt tokens  <= the request body's UTF-8 byte count (a token is at least a byte)
    output tokens  <= n x (max_completion_tokens or max_tokens, else the model's
                      context window, else MODELUX_BUDGET_MAX_OUTPUT_TOKENS)

priced at the model's highest tier (pricing/catalog.py). When the answer ends the
hold becomes the real cost, from the usage the upstream reported; a stream that
ended without usage is charged its whole hold. A request refused or failed before
an answer costs nothing.

A model the price database does not know and the operator has not priced cannot
be bounded: under a blocking budget it is refused with 422 `model_price_unknown`;
an alert-only budget lets it through, and it adds nothing to that budget.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelux_server.budget.alerts import SpendObserved, on_spend
from modelux_server.budget.lookup import BudgetRule
from modelux_server.budget.meter import BudgetMeter, Hold, Reserved
from modelux_server.budget.periods import Period, period_at
from modelux_server.errors import PlanError, ValidationFailed
from modelux_server.pricing.catalog import PriceBook, Rates
from modelux_server.proxy.asgi import RawHeaders
from modelux_server.proxy.providers.base import Usage
from modelux_server.proxy.resolve import Route, Target
from modelux_server.services import Services

log = logging.getLogger("modelux.budget")
_background: set[asyncio.Task[None]] = set()


class BudgetExceeded(PlanError):
    """402 `budget_exceeded` with the `budget` object the official modelux SDK reads.

    The SDK looks for `budget` in the error it is handed, which the OpenAI client takes
    from the body's `error` object: so `budget` is inside `error` as well as at the top
    level, where the contract puts it (docs/decisions/).
    """

    type = "budget_exceeded"
    code = "budget_exceeded"

    def __init__(self, message: str, budget: dict[str, Any], retry_after: int) -> None:
        super().__init__(message, budget=budget)
        self.budget = budget
        self.headers.update(
            {
                "Retry-After": str(retry_after),
                "x-modelux-budget-name": budget["name"],
                "x-modelux-budget-remaining": f"{max(0.0, budget['cap_usd'] - budget['spend_usd']):.6f}",
                "x-modelux-budget-action": "block",
                "x-modelux-budget-reset": budget["period_resets_at"],
            }
        )

    def body(self) -> dict[str, Any]:
        return {**super().body(), "budget": self.budget}


def usd(micros: int) -> float:
    return round(micros / 1_000_000, 6)


def _output_bound(body: dict[str, Any], rates: Rates, default: int) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return rates.context_window or default


# An image, audio clip or file in a message costs tokens its few bytes (a URL, an id) do
# not bound; the vendors' own figures for one image stay well under this
MEDIA_PART_TOKENS = 8_192


def _media_parts(body: dict[str, Any]) -> int:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return 0
    return sum(
        1
        for message in messages
        if isinstance(message, dict) and isinstance(message.get("content"), list)
        for part in message["content"]
        if isinstance(part, dict) and part.get("type") not in (None, "text")
    )


def worst_case(
    prices: PriceBook, route: Route, body: dict[str, Any], size: int, kind: str, default_output: int
) -> tuple[int, list[Target]]:
    """The most this request can cost (micro-dollars), and the targets with no known price."""
    size += MEDIA_PART_TOKENS * _media_parts(body)
    n = body.get("n")
    choices = n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1
    costs: list[int] = []
    unknown: list[Target] = []
    for target in route.targets:
        rates = prices.rates(target.vendor, target.model)
        if rates is None:
            unknown.append(target)
            continue
        output = 0 if kind == "embeddings" else choices * _output_bound(body, rates, default_output)
        costs.append(rates.worst_case_micros(size, output))
    if route.strategy == "ensemble":
        return sum(costs), unknown
    return max(costs, default=0), unknown


def real_cost(prices: PriceBook, target: Target, usage: Usage | None, held: int) -> int:
    """What the answer cost; its hold when the upstream did not say how many tokens."""
    if usage is None:
        return held
    rates = prices.rates(target.vendor, target.model)
    if rates is None:
        return 0
    return rates.cost_micros(usage.prompt_tokens, usage.completion_tokens)


@dataclass(slots=True)
class Charge:
    """One request's place in its budgets, from the hold to the settlement."""

    rules: tuple[BudgetRule, ...]
    reserved: Reserved
    amount: int
    headers: RawHeaders
    priced: bool
    settled: bool = False


# the current period per (kind, anchor day): worked out once per period, not per request
_periods: dict[tuple[str, int], Period] = {}
# hold tokens: unique across processes (the prefix) and within one (the counter)
_token_prefix = f"h{os.urandom(6).hex()}."
_tokens = itertools.count()


_resets: dict[str, str] = {}
# the rules behind the budgets this process has reserved on, for the spend a shared
# counter reports (`observed`); replaced as the lookups refresh them
_known: dict[str, BudgetRule] = {}


def observed(rt: Services, hold: Hold, spent: int) -> None:
    """A shared counter's word on a budget's spend (every process's answers): the alert
    emails hear of thresholds reached, whoever's answer reached them."""
    rule = _known.get(hold.budget_id)
    if rule is not None and rule.marks and spent >= rule.marks[0]:
        _observe(rt, rule, hold.period, spent)


def _resets_at(period: Period) -> str:
    found = _resets.get(period.key)
    if found is None:
        if len(_resets) > 64:
            _resets.clear()
        found = _resets[period.key] = period.end.isoformat()
    return found


def _period(rule: BudgetRule, now: datetime, anchor_day: int) -> Period:
    key = (rule.period, anchor_day)
    period = _periods.get(key)
    if period is None or not period.start <= now < period.end:
        period = _periods[key] = period_at(rule.period, now, anchor_day)
    return period


async def reserve(
    rt: Services,
    meter: BudgetMeter,
    prices: PriceBook,
    rules: tuple[BudgetRule, ...],
    route: Route,
    body: dict[str, Any],
    size: int,
    kind: str,
    anchor_day: int,
) -> Charge:
    """Hold the request's worst case against its budgets, or raise 402/422."""
    amount, unknown = worst_case(prices, route, body, size, kind, rt.settings.budget_max_output_tokens)
    blocking = [rule for rule in rules if rule.blocking] if unknown else []
    if blocking:
        target = unknown[0]
        raise ValidationFailed(
            f"The price of '{target.label}' is not known, so the budget '{blocking[0].name}' cannot be "
            "checked. Ask your administrator to set a price for it.",
            code="model_price_unknown",
            param="model",
        )
    for rule in rules:
        _known[rule.id] = rule
    now = rt.clock.now()
    holds = tuple(
        Hold(rule.id, _period(rule, now, anchor_day), rule.cap, amount if rule.blocking else 0, rule.blocking)
        for rule in rules
    )
    outcome = await meter.reserve(holds, f"{_token_prefix}{next(_tokens)}")
    if not isinstance(outcome, Reserved):
        rule = next(r for r in rules if r.id == outcome.hold.budget_id)
        period = outcome.hold.period
        _observe(rt, rule, period, outcome.spent)  # the 100% alert, if its first try failed
        raise BudgetExceeded(
            f"The budget '{rule.name}' has no room for this request: ${usd(outcome.spent):.2f} of "
            f"${usd(rule.cap):.2f} spent this period. It resets at {period.end.isoformat()}.",
            {
                "name": rule.name,
                "spend_usd": usd(outcome.spent),
                "cap_usd": usd(rule.cap),
                "period": rule.period,
                "period_resets_at": period.end.isoformat(),
            },
            retry_after=max(1, math.ceil((period.end - now).total_seconds())),
        )
    return Charge(rules, outcome, amount, _headers(rules, outcome), priced=not unknown)


_NAME, _REMAINING, _ACTION, _RESET = (
    b"x-modelux-budget-name",
    b"x-modelux-budget-remaining",
    b"x-modelux-budget-action",
    b"x-modelux-budget-reset",
)
# the SDK's names for the two actions: block, or let the request through
_ACTIONS = {True: b"block", False: b"warn_only"}


def _headers(rules: tuple[BudgetRule, ...], reserved: Reserved) -> RawHeaders:
    """The budget with the least room left names itself in `x-modelux-budget-*`."""
    committed = reserved.committed
    rule, hold = rules[0], reserved.holds[0]
    remaining = rule.cap - committed.get(rule.id, 0)
    for other, other_hold in zip(rules[1:], reserved.holds[1:], strict=True):
        left = other.cap - committed.get(other.id, 0)
        if left < remaining:
            rule, hold, remaining = other, other_hold, left
    return [
        (_NAME, rule.name_header),
        (_REMAINING, b"%.6f" % (max(0, remaining) / 1_000_000)),
        (_ACTION, _ACTIONS[rule.blocking]),
        (_RESET, _resets_at(hold.period).encode("ascii")),
    ]


def settle(rt: Services, meter: BudgetMeter, charge: Charge, cost: int) -> None:
    """Turn the hold into the real cost, once, without the answer waiting for it; thresholds
    crossed go to the alert emails off the path."""
    if charge.settled:
        return
    charge.settled = True
    cost = cost if charge.priced else 0

    if cost <= 0 or not any(rule.marks for rule in charge.rules):
        meter.settle(charge.reserved, cost)
        return

    def counted(spends: dict[str, int]) -> None:
        for rule, hold in zip(charge.rules, charge.reserved.holds, strict=True):
            spent = spends.get(rule.id, 0)
            if rule.marks and spent >= rule.marks[0] and rule.crossed(spent - cost, spent):
                _observe(rt, rule, hold.period, spent)

    meter.settle(charge.reserved, cost, counted)


def _observe(rt: Services, rule: BudgetRule, period: Period, spent: int) -> None:
    """Hand a threshold crossing to the alert emails (budget/alerts.py), off the hot path."""
    event = SpendObserved(
        budget_id=rule.id, org_id=rule.org_id, period=period, spent_micros=spent, cap_micros=rule.cap
    )

    async def run() -> None:
        try:
            await on_spend(rt, event)
        except Exception:  # noqa: BLE001 - an alert must never fail a request
            log.exception("budget alert failed for %s", rule.id)

    task = asyncio.create_task(run())
    _background.add(task)
    task.add_done_callback(_background.discard)


async def drain_alerts() -> None:
    """Wait for pending alert tasks (tests and shutdown)."""
    while _background:
        await asyncio.gather(*list(_background), return_exceptions=True)
