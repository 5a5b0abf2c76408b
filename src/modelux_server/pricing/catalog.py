"""What a model costs, read from the `genai-prices` price database.

Prices are never typed in here: the database (a maintained, versioned package)
knows each vendor's models, their per-million-token prices (with the long-context
tiers some vendors charge) and their context windows. This module only maps our
vendor names onto the database's providers and reduces a model's price to the two
numbers a budget needs, input and output USD per million tokens.

An operator can price what the database does not know (a self-hosted model, a
new release) with `MODELUX_MODEL_PRICES`; an override wins over the database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from genai_prices import types as price_types
from genai_prices.data_snapshot import get_snapshot

# our vendor id -> the price database's provider id
PRICE_PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "google",
    "azure": "azure",
    "bedrock": "aws",
    "groq": "groq",
    "fireworks": "fireworks",
    "deepseek": "deepseek",
    "openrouter": "openrouter",
    "xai": "x-ai",
    "mistral": "mistral",
    "together": "together",
}
MILLION = Decimal(1_000_000)


class PriceOverrideError(ValueError):
    """`MODELUX_MODEL_PRICES` is not what it should be; the message says why."""


@dataclass(frozen=True, slots=True)
class Tier:
    start: int  # input tokens from which the whole request pays this tier's rates
    input_per_mtok: Decimal
    output_per_mtok: Decimal


def _pico(per_mtok: Decimal) -> int:
    """USD per million tokens as whole pico-dollars per token (1 USD/Mtok = 10^6 pUSD/token),
    rounded up: the hot path then prices a request in integers."""
    return int((per_mtok * MILLION).to_integral_value(rounding=ROUND_CEILING))


@dataclass(frozen=True)
class Rates:
    """A model's USD prices per million tokens, with long-context tiers (cliff pricing).

    Vendors that charge more for long prompts charge the higher rate for the whole
    request once the prompt passes the tier's start; `for_prompt` picks it.
    """

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    tiers: tuple[Tier, ...] = ()
    context_window: int | None = None
    source: str = "genai-prices"
    # integer pico-dollars per token: (prompt start, input, output) from the base up,
    # and the dearest of each for worst cases
    _steps: tuple[tuple[int, int, int], ...] = field(init=False, repr=False, compare=False)
    _dearest: tuple[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        steps = [(-1, _pico(self.input_per_mtok), _pico(self.output_per_mtok))]
        steps += [(t.start, _pico(t.input_per_mtok), _pico(t.output_per_mtok)) for t in self.tiers]
        object.__setattr__(self, "_steps", tuple(steps))
        object.__setattr__(self, "_dearest", (max(s[1] for s in steps), max(s[2] for s in steps)))

    def cost_micros(self, prompt_tokens: int, completion_tokens: int) -> int:
        """`cost_usd` in micro-dollars, rounded up, in integer arithmetic."""
        per_in, per_out = self._steps[0][1], self._steps[0][2]
        for start, tier_in, tier_out in self._steps[1:]:
            if prompt_tokens > start:
                per_in, per_out = tier_in, tier_out
        return -(-(per_in * prompt_tokens + per_out * completion_tokens) // 1_000_000)

    def worst_case_micros(self, prompt_tokens: int, completion_tokens: int) -> int:
        """`worst_case_usd` in micro-dollars, rounded up."""
        per_in, per_out = self._dearest
        return -(-(per_in * prompt_tokens + per_out * completion_tokens) // 1_000_000)

    def for_prompt(self, prompt_tokens: int) -> tuple[Decimal, Decimal]:
        rates = (self.input_per_mtok, self.output_per_mtok)
        for tier in self.tiers:
            if prompt_tokens > tier.start:
                rates = (tier.input_per_mtok, tier.output_per_mtok)
        return rates

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        per_in, per_out = self.for_prompt(prompt_tokens)
        return (per_in * prompt_tokens + per_out * completion_tokens) / MILLION

    def worst_case_usd(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        """The highest price these counts could come to, whatever tier they land in."""
        per_in = max([self.input_per_mtok, *(t.input_per_mtok for t in self.tiers)])
        per_out = max([self.output_per_mtok, *(t.output_per_mtok for t in self.tiers)])
        return (per_in * prompt_tokens + per_out * completion_tokens) / MILLION


def _decimal(value: object, where: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise PriceOverrideError(f"{where} must be a number") from None
    if not number.is_finite() or number < 0:
        raise PriceOverrideError(f"{where} must be a finite number >= 0")
    return number


def parse_overrides(raw: str) -> dict[str, Rates]:
    """`{"vendor/model": {"input_per_mtok": 0.5, "output_per_mtok": 1.5}, ...}`."""
    if not raw.strip():
        return {}
    try:
        data: Any = json.loads(raw)
    except ValueError:
        raise PriceOverrideError("MODELUX_MODEL_PRICES is not valid JSON") from None
    if not isinstance(data, dict):
        raise PriceOverrideError("MODELUX_MODEL_PRICES must be a JSON object")
    rates: dict[str, Rates] = {}
    for name, price in data.items():
        if "/" not in name or not isinstance(price, dict):
            raise PriceOverrideError(
                f"MODELUX_MODEL_PRICES[{name!r}]: keys are 'vendor/model', values objects "
                "with input_per_mtok and output_per_mtok"
            )
        unknown = set(price) - {"input_per_mtok", "output_per_mtok", "context_window"}
        if unknown or not {"input_per_mtok", "output_per_mtok"} <= set(price):
            raise PriceOverrideError(
                f"MODELUX_MODEL_PRICES[{name!r}] needs input_per_mtok and output_per_mtok "
                "(and may have context_window)"
            )
        window = price.get("context_window")
        if window is not None and (not isinstance(window, int) or isinstance(window, bool) or window < 1):
            raise PriceOverrideError(f"MODELUX_MODEL_PRICES[{name!r}].context_window must be an integer >= 1")
        rates[name.lower()] = Rates(
            _decimal(price["input_per_mtok"], f"MODELUX_MODEL_PRICES[{name!r}].input_per_mtok"),
            _decimal(price["output_per_mtok"], f"MODELUX_MODEL_PRICES[{name!r}].output_per_mtok"),
            context_window=window,
            source="operator",
        )
    return rates


def _per_mtok(value: object) -> tuple[Decimal, dict[int, Decimal]] | None:
    if isinstance(value, Decimal):
        return value, {}
    if isinstance(value, price_types.TieredPrices):
        return value.base, {tier.start: tier.price for tier in value.tiers}
    return None


@lru_cache(maxsize=4096)
def database_rates(vendor: str, model: str) -> Rates | None:
    """The database's current prices for a vendor's model; None when it does not know them.

    Cached per process: the database is the package's bundled snapshot, which only
    changes when the package is upgraded.
    """
    provider_id = PRICE_PROVIDERS.get(vendor)
    if provider_id is None:
        return None
    try:
        _provider, info = get_snapshot().find_provider_model(model, None, provider_id, None)
        prices = info.get_prices(datetime.now(UTC))
    except (LookupError, ValueError):
        return None
    inputs = _per_mtok(getattr(prices, "input_mtok", None))
    outputs = _per_mtok(getattr(prices, "output_mtok", None))
    if inputs is None or outputs is None:
        return None  # priced per image, per second or per request: not a token model
    starts = sorted(set(inputs[1]) | set(outputs[1]))
    tiers = tuple(
        Tier(
            start,
            _tier_price(inputs, start),
            _tier_price(outputs, start),
        )
        for start in starts
    )
    return Rates(inputs[0], outputs[0], tiers, info.context_window)


def _tier_price(prices: tuple[Decimal, dict[int, Decimal]], start: int) -> Decimal:
    base, tiers = prices
    current = base
    for tier_start in sorted(tiers):
        if tier_start <= start:
            current = tiers[tier_start]
    return current


class PriceBook:
    """The operator's overrides in front of the price database."""

    def __init__(self, overrides: dict[str, Rates] | None = None) -> None:
        self.overrides = overrides or {}
        self._found: dict[tuple[str, str], Rates | None] = {}

    @classmethod
    def from_setting(cls, raw: str) -> PriceBook:
        return cls(parse_overrides(raw))

    def rates(self, vendor: str, model: str) -> Rates | None:
        key = (vendor, model)
        if key in self._found:
            return self._found[key]
        found = self.overrides.get(f"{vendor}/{model}".lower())
        if found is None:
            found = database_rates(vendor, model)
        if len(self._found) > 4096:  # model names come from callers: keep the memo bounded
            self._found.clear()
        self._found[key] = found
        return found


@lru_cache(maxsize=64)
def models_for_vendor(vendor: str) -> list[str]:
    """The current (not deprecated) model ids the price database knows for a vendor."""
    provider_id = PRICE_PROVIDERS.get(vendor)
    if provider_id is None:
        return []
    for provider in get_snapshot().providers:
        if provider.id == provider_id:
            return sorted({m.id for m in provider.models if not m.deprecated})
    return []
