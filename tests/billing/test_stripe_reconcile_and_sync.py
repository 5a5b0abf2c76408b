"""`modelux admin reconcile` repairs missed webhooks; `modelux admin stripe-sync` is idempotent."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from modelux_server.billing.processor import PriceRef
from modelux_server.billing.stripe.apply import plan_of_price
from modelux_server.billing.stripe.reconcile import RUN_AT
from modelux_server.jobs.schedule import daily_at
from modelux_server.plans.catalog import load_catalog
from tests.billing.stripe_world import API_KEY, WEBHOOK_SECRET, StripeWorld
from tests.support import databases
from tests.support.stripe_emulator import StripeEmulator


def cli(
    tmp_path: Path, db_url: str, api_base: str, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    full = {
        **os.environ,
        "MODELUX_DATABASE_URL": db_url,
        "MODELUX_DATA_DIR": str(tmp_path / "cli"),
        "MODELUX_SECRET_KEY": "test-secret-key",
        "MODELUX_STRIPE_SECRET_KEY": API_KEY,
        "MODELUX_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MODELUX_STRIPE_API_BASE": api_base,
        **env,
    }
    command = [sys.executable, "-m", "modelux_server.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=full, timeout=60)


def test_reconcile_repairs_dropped_webhooks_and_then_finds_no_drift(
    world: StripeWorld, db_url: str, tmp_path: Path
) -> None:
    lapsed, newcomer = world.org("Lapsed", "owner@lapsed.test"), world.org("New", "owner@new.test")
    sub_id = world.subscribe(lapsed, "pro")
    world.emu.drop_next_webhooks(1)
    world.emu.set_subscription_status(sub_id, "unpaid")  # its webhook never arrives
    with world.api(newcomer) as c:
        started = c.post("/billing/checkout", json={"plan": "team", "interval": "monthly"}).json()["data"]
    dropped_before = len(world.emu.dropped)
    world.emu.drop_next_webhooks(100)
    world.emu.complete_checkout(started["id"])  # paid, but we hear nothing of it
    lost = len(world.emu.dropped) - dropped_before
    world.emu.drop_next_webhooks(-(100 - lost))  # deliver again from here on
    assert lost >= 4  # customer, subscription, invoice and checkout events
    assert world.billing(lapsed)["plan"]["id"] == "pro" and world.billing(newcomer)["plan"]["id"] == "free"

    out = cli(tmp_path, db_url, world.emu.base_url, "admin", "reconcile")
    assert out.returncode == 0, out.stderr
    lines = {line.split(":", 1)[0]: line for line in out.stdout.splitlines() if line.startswith("org_")}
    assert "plan_id: pro -> free" in lines[lapsed.id] and "status: unpaid" not in lines[lapsed.id]
    assert f"checkout {started['id']}: open -> complete" in lines[newcomer.id]
    assert "plan_id: free -> team" in lines[newcomer.id]
    assert "2 organization(s) repaired" in out.stdout

    assert world.billing(lapsed)["plan"]["id"] == "free"
    team = world.billing(newcomer)
    assert team["plan"] == {"id": "team", "name": "Team", "interval": "monthly"} and team["has_subscription"]
    assert [(c.to_plan, c.source) for c in world.plan_changes(newcomer.id)] == [("team", "reconcile")]

    again = cli(tmp_path, db_url, world.emu.base_url, "admin", "reconcile")
    assert again.returncode == 0 and "no drift found" in again.stdout, again.stdout + again.stderr


def test_stripe_sync_creates_the_catalog_once_and_moves_a_changed_price(
    tmp_path: Path, sqlite_template: Path
) -> None:
    db_url = databases.sqlite_copy(sqlite_template, tmp_path)
    with StripeEmulator(api_key=API_KEY) as emu:
        first = cli(tmp_path, db_url, emu.base_url, "admin", "stripe-sync")
        assert first.returncode == 0, first.stderr
        assert (
            "created product modelux_pro" in first.stdout and "created product modelux_team" in first.stdout
        )
        assert "modelux_free" not in first.stdout  # Free needs nothing in Stripe
        assert "created customer portal configuration" in first.stdout
        assert "customer.subscription.updated" in first.stdout  # the events to subscribe
        prices = {p["lookup_key"]: p for p in emu.events("price.created") for p in [p["data"]["object"]]}
        assert {k: (p["unit_amount"], p["recurring"]["interval"]) for k, p in prices.items()} == {
            "modelux_pro_monthly": (4900, "month"),
            "modelux_pro_annual": (49000, "year"),
            "modelux_team_monthly": (19900, "month"),
            "modelux_team_annual": (199000, "year"),
        }

        # Stripe refuses always_invoice for a portal cancellation; ours credits nothing (refunded instead)
        (conf,) = [e["data"]["object"] for e in emu.events("billing_portal.configuration.created")]
        assert conf["metadata"] == {"modelux": "portal"} and conf["is_default"] is False
        cancel = conf["features"]["subscription_cancel"]
        assert (cancel["mode"], cancel["proration_behavior"]) == ("immediately", "none")
        switch = conf["features"]["subscription_update"]
        assert sorted(p for product in switch["products"] for p in product["prices"]) == sorted(
            p["id"] for p in prices.values()
        )

        second = cli(tmp_path, db_url, emu.base_url, "admin", "stripe-sync")
        assert second.returncode == 0, second.stderr
        report = [line for line in second.stdout.splitlines() if not line.startswith("webhook events")]
        assert report == ["Stripe is in sync with the catalog; nothing changed"]

        source = load_catalog().plans["pro"]
        catalog = tmp_path / "plans.toml"
        builtin = (Path(__file__).parents[2] / "src/modelux_server/plans/plans.toml").read_text()
        catalog.write_text(builtin.replace("monthly_price_cents = 4900", "monthly_price_cents = 5900", 1))
        assert source.monthly_price_cents == 4900
        third = cli(tmp_path, db_url, emu.base_url, "admin", "stripe-sync", MODELUX_PLAN_CATALOG=str(catalog))
        assert third.returncode == 0, third.stderr
        assert "created price modelux_pro_monthly" in third.stdout and "59.00 USD/monthly" in third.stdout
        assert f"deactivated old price {prices['modelux_pro_monthly']['id']}" in third.stdout
        assert "updated customer portal configuration" in third.stdout


def test_stripe_sync_needs_a_stripe_key(tmp_path: Path, sqlite_template: Path) -> None:
    db_url = databases.sqlite_copy(sqlite_template, tmp_path)
    out = cli(tmp_path, db_url, "http://127.0.0.1:9", "admin", "stripe-sync", MODELUX_STRIPE_SECRET_KEY="")
    assert out.returncode == 2 and "MODELUX_STRIPE_SECRET_KEY" in out.stderr


def test_subscriptions_map_to_plans_by_lookup_key_or_metadata_never_by_name() -> None:
    catalog = load_catalog()

    def price(key: str | None, interval: str | None = "month", **meta: str) -> PriceRef:
        return PriceRef(
            id="price_1", lookup_key=key, metadata=meta, recurring_interval=interval, unit_amount=1
        )

    assert plan_of_price(catalog, price("modelux_team_annual")) == ("team", "annual")
    # an old price whose lookup key moved to a newer one still maps through its metadata
    assert plan_of_price(catalog, price(None, modelux_plan="pro", modelux_interval="monthly")) == (
        "pro",
        "monthly",
    )
    assert plan_of_price(catalog, price(None, "year", modelux_plan="pro")) == ("pro", "annual")
    assert plan_of_price(catalog, price("Pro monthly")) is None
    assert plan_of_price(catalog, price("modelux_gold_monthly")) is None


def test_the_nightly_run_is_at_three_utc() -> None:
    next_run = daily_at(RUN_AT)
    assert next_run(datetime(2026, 1, 10, 2, 0, tzinfo=UTC)) == datetime(2026, 1, 10, 3, 0, tzinfo=UTC)
    assert next_run(datetime(2026, 1, 10, 3, 0, tzinfo=UTC)) == datetime(2026, 1, 11, 3, 0, tzinfo=UTC)
