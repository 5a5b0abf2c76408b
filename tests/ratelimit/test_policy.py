"""Which per-minute limit applies (key override, plan, setting), and the catalog's checks of it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from modelux_server.config import Settings
from modelux_server.plans.catalog import CatalogError, load_catalog, parse_catalog
from modelux_server.plans.entitlements import effective_plan
from modelux_server.ratelimit.policy import management_key_limit, plan_matters, project_key_limit

DEFAULT = load_catalog()


def catalog_with(rate_limits: str) -> str:
    return f"""
[plans.free]
name = "Free"
self_serve = true
monthly_price_cents = 0
{rate_limits}

[plans.free.limits]
monthly_requests = 10
projects = 1
api_keys = 1
provider_credentials = 1
"""


def settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(data_dir=tmp_path, **kw)


def test_the_defaults_are_the_documented_600_and_60(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert (s.rate_limit_project_key_per_minute, s.rate_limit_management_key_per_minute) == (600, 60)
    free = DEFAULT.plans["free"]
    assert project_key_limit(s, free) == 600
    assert management_key_limit(s, free) == 60


def test_paid_plans_of_the_default_catalog_raise_the_project_key_limit_only(tmp_path: Path) -> None:
    s = settings(tmp_path)
    limits = {pid: project_key_limit(s, plan) for pid, plan in DEFAULT.plans.items()}
    assert limits == {"free": 600, "pro": 1200, "team": 3000, "enterprise": 10000}
    assert {management_key_limit(s, plan) for plan in DEFAULT.plans.values()} == {60}
    assert not plan_matters(s, DEFAULT, "management_key_per_minute")
    assert plan_matters(s, DEFAULT, "project_key_per_minute")


def test_a_key_override_beats_the_plan_and_a_zero_setting_turns_the_limit_off(tmp_path: Path) -> None:
    team = DEFAULT.plans["team"]
    assert project_key_limit(settings(tmp_path), team, override=5) == 5
    assert project_key_limit(settings(tmp_path), team, override=9000) == 9000
    off = settings(tmp_path, rate_limit_project_key_per_minute=0, rate_limit_management_key_per_minute=0)
    assert project_key_limit(off, team, override=5) is None
    assert management_key_limit(off, team) is None
    assert management_key_limit(off, None) is None


def test_a_catalog_plan_may_set_either_limit_or_make_it_unlimited(tmp_path: Path) -> None:
    catalog = parse_catalog(
        catalog_with('rate_limits = { project_key_per_minute = "unlimited", management_key_per_minute = 7 }')
    )
    free = catalog.plans["free"]
    s = settings(tmp_path)
    assert project_key_limit(s, free) is None
    assert management_key_limit(s, free) == 7
    assert plan_matters(s, catalog, "management_key_per_minute")


def test_custom_enterprise_plans_take_the_catalog_plans_rate_limits() -> None:
    custom = SimpleNamespace(name="Acme deal", limits={}, features=[])
    plan = effective_plan(DEFAULT, "enterprise", custom)  # type: ignore[arg-type]
    assert plan.rate_limits == {"project_key_per_minute": 10000}


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("rate_limits = { per_second = 5 }", "unknown rate limit 'per_second'"),
        ("rate_limits = { project_key_per_minute = 0 }", "from 1 to 100,000"),
        ("rate_limits = { project_key_per_minute = 100001 }", "from 1 to 100,000"),
        ("rate_limits = { management_key_per_minute = true }", "from 1 to 100,000"),
        ("rate_limits = { management_key_per_minute = 1.5 }", "from 1 to 100,000"),
        ('rate_limits = { management_key_per_minute = "lots" }', "from 1 to 100,000"),
        ("rate_limits = 600", "'rate_limits' must be a table"),
    ],
)
def test_a_bad_rate_limit_in_the_catalog_stops_the_service_naming_the_line(line: str, says: str) -> None:
    with pytest.raises(CatalogError) as bad:
        parse_catalog(catalog_with(line), "plans.toml")
    assert says in str(bad.value)
    assert "plans.toml: line 6: plan 'free'" in str(bad.value)


def test_settings_refuse_a_negative_or_huge_limit(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        settings(tmp_path, rate_limit_project_key_per_minute=-1)
    with pytest.raises(ValueError):
        settings(tmp_path, rate_limit_management_key_per_minute=100_001)
