"""The plan catalog: data, validated when the service starts.

A broken catalog stops the service with a message naming the line, because
a typo in a limit would otherwise silently give customers the wrong plan.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

LIMIT_NAMES = ("monthly_requests", "projects", "api_keys", "provider_credentials")
MONTHLY_LIMITS = ("monthly_requests",)
FEATURES = (
    "ensembles",
    "custom_routing_rules",
    "audit_log",
    "warehouse_export",
    "sso",
    "scim",
    "access_review_export",
    "data_residency",
    "payload_retention_controls",
)
UNLIMITED = "unlimited"
# requests per minute per key (ratelimit/policy.py); a plan may set either, or neither
PROJECT_KEY_PER_MINUTE = "project_key_per_minute"
MANAGEMENT_KEY_PER_MINUTE = "management_key_per_minute"
RATE_LIMIT_NAMES = (PROJECT_KEY_PER_MINUTE, MANAGEMENT_KEY_PER_MINUTE)
MAX_PER_MINUTE = 100_000
# every paid plan is priced for both; Free has no interval worth keeping
INTERVALS = ("monthly", "annual")


class CatalogError(Exception):
    """The catalog file cannot be used; the message names the line."""


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    order: int
    self_serve: bool
    monthly_price_cents: int | None
    annual_price_cents: int | None
    limits: Mapping[str, int | None]  # None = unlimited
    features: frozenset[str]
    description: str = ""
    # only the names the plan sets; None = no limit (see RATE_LIMIT_NAMES)
    rate_limits: Mapping[str, int | None] = field(default_factory=dict)
    # how far back the audit log reaches on this plan (events are kept on every plan)
    audit_retention_days: int = 0

    def limit(self, name: str) -> int | None:
        return self.limits[name]

    def price_cents(self, interval: str) -> int | None:
        return self.annual_price_cents if interval == "annual" else self.monthly_price_cents

    @property
    def sort_key(self) -> tuple[int, int, int]:
        # cheapest first; custom-priced plans after every priced one
        price = self.monthly_price_cents
        return (1 if price is None else 0, price or 0, self.order)


@dataclass(frozen=True)
class Catalog:
    plans: Mapping[str, Plan]

    def get(self, plan_id: str) -> Plan | None:
        return self.plans.get(plan_id)

    def ordered(self) -> list[Plan]:
        return sorted(self.plans.values(), key=lambda p: p.sort_key)

    def self_serve(self) -> list[Plan]:
        return [p for p in self.ordered() if p.self_serve]

    @property
    def default_plan(self) -> Plan:
        """Where a new organization starts: the cheapest self-serve plan (Free)."""
        return self.self_serve()[0]

    def cheapest_with_feature(self, feature: str) -> Plan | None:
        return next((p for p in self.ordered() if feature in p.features), None)

    def cheapest_with_higher_limit(
        self, name: str, current: int | None, above: Plan | None = None
    ) -> Plan | None:
        """The cheapest self-serve plan above `above` whose limit beats `current`.

        Only plans ranked above the current one count as upgrades, so a custom
        Enterprise plan with a small limit is never pointed "up" to Free.
        """
        if current is None:
            return None
        for plan in self.self_serve():
            if above is not None and plan.sort_key <= above.sort_key:
                continue
            limit = plan.limit(name)
            if limit is None or limit > current:
                return plan
        return None


def load_catalog(path: Path | None = None) -> Catalog:
    if path is None:
        source = resources.files("modelux_server.plans").joinpath("plans.toml").read_text()
        where = "built-in plans.toml"
    else:
        try:
            source = path.read_text()
        except OSError as exc:
            raise CatalogError(f"{path}: cannot read plan catalog: {exc.strerror}") from None
        where = str(path)
    return parse_catalog(source, where)


def parse_catalog(source: str, where: str = "catalog") -> Catalog:
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{where}: {exc}") from None
    plans_raw = data.get("plans")
    if not isinstance(plans_raw, dict) or not plans_raw:
        raise CatalogError(f"{where}: line 1: the catalog needs at least one [plans.<id>] table")
    plans = {pid: _parse_plan(pid, raw, source, where) for pid, raw in plans_raw.items()}
    catalog = Catalog(plans=plans)
    if not catalog.self_serve():
        raise CatalogError(f"{where}: line 1: at least one plan must be self_serve = true")
    if catalog.default_plan.monthly_price_cents:
        line = _line_of(source, f"plans.{catalog.default_plan.id}", None)
        raise CatalogError(f"{where}: line {line}: the cheapest self-serve plan must be free")
    return catalog


def _parse_plan(plan_id: str, raw: Any, source: str, where: str) -> Plan:
    def fail(key: str | None, message: str, table: str = f"plans.{plan_id}") -> CatalogError:
        return CatalogError(f"{where}: line {_line_of(source, table, key)}: plan '{plan_id}': {message}")

    if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", plan_id):
        return_error = fail(None, "plan ids are lowercase letters, digits and _")
        raise return_error
    if not isinstance(raw, dict):
        raise fail(None, "must be a table")
    known = {
        "name",
        "order",
        "self_serve",
        "monthly_price_cents",
        "annual_price_cents",
        "description",
        "features",
        "limits",
        "rate_limits",
        "audit_retention_days",
    }
    for key in raw:
        if key not in known:
            raise fail(key, f"unknown key '{key}'")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise fail("name", "'name' must be a non-empty string")
    prices: dict[str, int | None] = {}
    for key in ("monthly_price_cents", "annual_price_cents"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise fail(key, f"'{key}' must be a whole number of cents >= 0")
        prices[key] = value
    self_serve = raw.get("self_serve", False)
    if not isinstance(self_serve, bool):
        raise fail("self_serve", "'self_serve' must be true or false")
    if self_serve and prices["monthly_price_cents"] is None:
        raise fail("self_serve", "a self-serve plan needs monthly_price_cents")
    features = raw.get("features", [])
    if not isinstance(features, list):
        raise fail("features", "'features' must be a list")
    for feature in features:
        if feature not in FEATURES:
            raise fail("features", f"unknown feature '{feature}' (known: {', '.join(FEATURES)})")
    limits_raw = raw.get("limits")
    table = f"plans.{plan_id}.limits"
    if not isinstance(limits_raw, dict):
        raise fail(None, "needs a [plans.<id>.limits] table")
    limits: dict[str, int | None] = {}
    for key in limits_raw:
        if key not in LIMIT_NAMES:
            raise fail(key, f"unknown limit '{key}' (known: {', '.join(LIMIT_NAMES)})", table)
    for key in LIMIT_NAMES:
        if key not in limits_raw:
            raise fail(None, f"limit '{key}' is missing", table)
        value = limits_raw[key]
        if value == UNLIMITED:
            limits[key] = None
        elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            limits[key] = value
        else:
            raise fail(key, f"limit '{key}' must be a whole number >= 0 or \"unlimited\"", table)
    order = raw.get("order", 0)
    if not isinstance(order, int):
        raise fail("order", "'order' must be a whole number")
    rate_limits = _rate_limits(raw.get("rate_limits", {}), fail)
    retention = raw.get("audit_retention_days", 0)
    if not isinstance(retention, int) or isinstance(retention, bool) or not 0 <= retention <= 3660:
        raise fail("audit_retention_days", "'audit_retention_days' must be a whole number of days, 0 to 3660")
    return Plan(
        id=plan_id,
        name=name,
        order=order,
        self_serve=self_serve,
        monthly_price_cents=prices["monthly_price_cents"],
        annual_price_cents=prices["annual_price_cents"],
        limits=limits,
        features=frozenset(features),
        description=str(raw.get("description", "")),
        rate_limits=rate_limits,
        audit_retention_days=retention,
    )


def _rate_limits(raw: Any, fail: Callable[..., CatalogError]) -> dict[str, int | None]:
    """`rate_limits = { project_key_per_minute = N, management_key_per_minute = M }`, both optional."""
    if not isinstance(raw, dict):
        raise fail("rate_limits", "'rate_limits' must be a table")
    found: dict[str, int | None] = {}
    for key, value in raw.items():
        if key not in RATE_LIMIT_NAMES:
            raise fail("rate_limits", f"unknown rate limit '{key}' (known: {', '.join(RATE_LIMIT_NAMES)})")
        if value == UNLIMITED:
            found[key] = None
        elif isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_PER_MINUTE:
            found[key] = value
        else:
            raise fail(
                "rate_limits",
                f"rate limit '{key}' must be a whole number from 1 to {MAX_PER_MINUTE:,} or \"unlimited\"",
            )
    return found


def _line_of(source: str, table: str, key: str | None) -> int:
    """Best-effort line number of `key` inside `[table]` (or of the table header)."""
    lines = source.splitlines()
    header = re.compile(r"^\s*\[\s*" + re.escape(table) + r"\s*\]\s*(#.*)?$")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        return 1
    if key is None:
        return start + 1
    key_re = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
    for i in range(start + 1, len(lines)):
        if lines[i].lstrip().startswith("["):
            break
        if key_re.match(lines[i]):
            return i + 1
    return start + 1
