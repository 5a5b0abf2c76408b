"""The real app on a loopback port, in Stripe mode, against the Stripe emulator.

Webhooks travel for real: the emulator POSTs signed events to the app's
`/webhooks/stripe`, and the app re-reads subscriptions from the emulator
through the official SDK. The app's clock follows the emulator's, so renewal
dates and request windows computed on both sides agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import stripe
from sqlalchemy import func, select

from modelux_server.billing.repository import list_plan_changes
from modelux_server.billing.stripe.catalog_push import sync_catalog
from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from modelux_server.management_key.service import issue_management_key
from modelux_server.models import PlanChange, PlanState, StripeEvent
from modelux_server.services import Services
from tests.conftest import Org, make_org
from tests.support.live_server import LiveServer
from tests.support.stripe_emulator import StripeEmulator

JAN_10_2026 = 1768003200  # 2026-01-10T00:00:00Z: organizations are made on the 10th
DAY = 86400
WEBHOOK_SECRET = "whsec_modelux_tests"
API_KEY = "sk_test_modelux"


def when(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@dataclass
class StripeWorld:
    emu: StripeEmulator
    server: LiveServer
    clock: FrozenClock
    stripe: stripe.StripeClient  # the test's own view of "Stripe", for assertions

    @property
    def rt(self) -> Services:
        return self.server.runtime

    @property
    def webhook_url(self) -> str:
        return f"{self.server.url}/webhooks/stripe"

    # ------------------------------------------------------------------ time
    def advance(self, seconds: int) -> None:
        """Move Stripe's clock (renewals fire, webhooks land) and ours with it."""
        self.emu.advance(seconds)
        self.clock.set(when(self.emu.now()))

    # ------------------------------------------------------------------ tenants
    def org(self, name: str = "Acme", email: str = "owner@acme.test") -> Org:
        org: Org = self.server.call(make_org(self.rt, name, email))
        return org

    def key(self, org: Org, role: str) -> str:
        async def issue() -> str:
            async with self.rt.db.session() as session:
                _, token = await issue_management_key(
                    session, self.rt, org.id, name=role, role=role, created_by=None
                )
            return token

        token: str = self.server.call(issue())
        return token

    def api(self, org: Org | str) -> httpx.Client:
        key = org.key if isinstance(org, Org) else org
        return httpx.Client(
            base_url=f"{self.server.url}/manage/v1",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )

    def billing(self, org: Org) -> dict[str, Any]:
        with self.api(org) as c:
            r = c.get("/billing")
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()["data"]
        return data

    def subscribe(self, org: Org, plan: str = "pro", interval: str = "monthly") -> str:
        """Checkout through our API, paid in the emulator; returns the subscription id."""
        with self.api(org) as c:
            r = c.post("/billing/checkout", json={"plan": plan, "interval": interval})
        assert r.status_code == 200, r.text
        done = self.emu.complete_checkout(r.json()["data"]["id"])
        self.emu.wait_for_webhooks()
        return str(done["subscription"])

    def change_plan(self, org: Org, plan: str, interval: str = "monthly") -> httpx.Response:
        with self.api(org) as c:
            r = c.post("/billing/change-plan", json={"plan": plan, "interval": interval})
        self.emu.wait_for_webhooks()
        return r

    # ------------------------------------------------------------------ our database
    def state(self, org_id: str) -> PlanState:
        async def read() -> PlanState:
            async with self.rt.db.session() as session:
                state = await session.get(PlanState, org_id)
                assert state is not None
                return state

        return self.server.call(read())

    def plan_changes(self, org_id: str) -> list[PlanChange]:
        async def read() -> list[PlanChange]:
            async with self.rt.db.session() as session:
                return list(reversed(await list_plan_changes(session, org_id)))

        return self.server.call(read())

    def stripe_event_count(self) -> int:
        async def count() -> int:
            async with self.rt.db.session() as session:
                return int(
                    (await session.execute(select(func.count()).select_from(StripeEvent))).scalar_one()
                )

        return self.server.call(count())

    def sync_catalog(self) -> list[str]:
        return self.server.call(sync_catalog(self.rt, self.rt.billing))

    def latest_invoice(self, subscription_id: str) -> Any:
        sub = self.stripe.v1.subscriptions.retrieve(subscription_id)
        return self.stripe.v1.invoices.retrieve(sub.latest_invoice)


def stripe_settings(db_url: str, data_dir: Path, emu: StripeEmulator, **extra: Any) -> Settings:
    return Settings(
        database_url=db_url,
        data_dir=data_dir,
        secret_key="test-secret-key",
        public_url="https://modelux.test",
        workers_enabled=False,
        stripe_secret_key=emu.api_key,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=emu.base_url,
        **extra,
    )


def start_world(db_url: str, data_dir: Path, **settings: Any) -> Iterator[StripeWorld]:
    """The world; `settings` are more Settings fields (operator email, SMTP, ...)."""
    emu = StripeEmulator(webhook_secret=WEBHOOK_SECRET, api_key=API_KEY, start_time=JAN_10_2026)
    emu.start()
    clock = FrozenClock(when(emu.now()))
    server = LiveServer(stripe_settings(db_url, data_dir, emu, **settings), clock=clock).start()
    emu.webhook_url = f"{server.url}/webhooks/stripe"
    client = stripe.StripeClient(emu.api_key, base_addresses={"api": emu.base_url}, max_network_retries=0)
    world = StripeWorld(emu=emu, server=server, clock=clock, stripe=client)
    try:
        world.sync_catalog()
        emu.wait_for_webhooks()
        yield world
    finally:
        server.stop()
        emu.stop()
