from pathlib import Path

import pytest

from modelux_server.plans.catalog import CatalogError, load_catalog, parse_catalog

DEFAULT = load_catalog()


def test_default_catalog_matches_the_contract_table() -> None:
    free, pro, team, ent = (DEFAULT.plans[p] for p in ("free", "pro", "team", "enterprise"))
    assert [p.id for p in DEFAULT.ordered()] == ["free", "pro", "team", "enterprise"]
    assert (free.monthly_price_cents, pro.monthly_price_cents, team.monthly_price_cents) == (
        0,
        4900,
        19900,
    )
    assert (pro.annual_price_cents, team.annual_price_cents) == (49000, 199000)
    assert dict(free.limits) == {
        "monthly_requests": 10000,
        "projects": 1,
        "api_keys": 3,
        "provider_credentials": 2,
    }
    assert dict(pro.limits) == {
        "monthly_requests": 250000,
        "projects": 5,
        "api_keys": 25,
        "provider_credentials": 10,
    }
    assert dict(team.limits) == {
        "monthly_requests": 2000000,
        "projects": 25,
        "api_keys": 100,
        "provider_credentials": 50,
    }
    assert free.features == frozenset()
    assert pro.features == {"ensembles"}
    assert team.features == {"ensembles", "custom_routing_rules", "audit_log", "warehouse_export"}
    assert {
        "sso",
        "scim",
        "access_review_export",
        "data_residency",
        "payload_retention_controls",
    } <= ent.features
    assert not ent.self_serve and ent.monthly_price_cents is None
    assert all(lim is None for lim in ent.limits.values())


def test_annual_is_two_months_free() -> None:
    for plan in DEFAULT.self_serve():
        assert plan.annual_price_cents == (plan.monthly_price_cents or 0) * 10


def test_broken_limit_names_its_line() -> None:
    source = (Path(__file__).parents[2] / "src/modelux_server/plans/plans.toml").read_text()
    broken = source.replace("projects = 5\n", 'projects = "five"\n')
    line = broken.splitlines().index('projects = "five"') + 1
    with pytest.raises(CatalogError, match=rf"line {line}: plan 'pro': limit 'projects'"):
        parse_catalog(broken, "custom.toml")


def test_toml_syntax_error_names_its_line() -> None:
    with pytest.raises(CatalogError, match=r"custom.toml: .*line 2"):
        parse_catalog("[plans.free]\nname = \n", "custom.toml")


def test_unknown_feature_is_refused() -> None:
    source = (Path(__file__).parents[2] / "src/modelux_server/plans/plans.toml").read_text()
    broken = source.replace('features = ["ensembles"]', 'features = ["ensemblez"]')
    with pytest.raises(CatalogError, match="unknown feature 'ensemblez'"):
        parse_catalog(broken)


def test_operator_catalog_replaces_the_default(tmp_path: Path) -> None:
    path = tmp_path / "plans.toml"
    path.write_text(
        """
[plans.hobby]
name = "Hobby"
self_serve = true
monthly_price_cents = 0
annual_price_cents = 0
[plans.hobby.limits]
monthly_requests = 50
projects = 1
api_keys = 1
provider_credentials = 1
"""
    )
    catalog = load_catalog(path)
    assert list(catalog.plans) == ["hobby"]
    assert catalog.default_plan.limit("monthly_requests") == 50


def test_missing_catalog_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read plan catalog"):
        load_catalog(tmp_path / "nope.toml")
