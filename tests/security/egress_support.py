"""What the egress tests share: the app started in-process, DNS answers the test chooses,
credential rows written past the save-time check, and the request meter."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

from modelux_server.app import create_app
from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from modelux_server.kit.ids import new_id
from modelux_server.kit.secrets import masked_hint
from modelux_server.models import ProviderCredential
from modelux_server.services import Services
from tests.conftest import Org


@asynccontextmanager
async def serving(
    settings: Settings, clock: FrozenClock, *, egress_allow: str | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """The app on the given settings, started like `modelux serve` (lifespan included)."""
    if egress_allow is not None:
        settings = settings.model_copy(update={"egress_allow": egress_allow})
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://modelux.test") as client:
            yield client, app.state.services


class FakeResolver(AbstractResolver):
    """DNS at the edge: names answer whatever the test says, as a rebinding server would.

    A name missing from `answers` gets `default` (when one is given).
    """

    def __init__(self, answers: dict[str, str], default: str | None = None) -> None:
        self.answers = answers
        self.default = default
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        address = self.answers[host] if self.default is None else self.answers.get(host, self.default)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        pass


async def stored_credential(rt: Services, org_id: str, base_url: str, name: str = "legacy") -> str:
    """A row written past the save-time check (an older version or a wider policy stored it)."""
    credential_id = new_id("prov")
    async with rt.db.session() as session:
        session.add(
            ProviderCredential(
                id=credential_id,
                org_id=org_id,
                vendor="openai",
                name=name,
                base_url=base_url,
                secret_encrypted=rt.encryptor.encrypt(f"sk-{name}-0000"),
                hint=masked_hint(f"sk-{name}-0000"),
                created_at=datetime.now(UTC),
            )
        )
    return credential_id


async def requests_used(client: httpx.AsyncClient, org: Org) -> int:
    billing = (await client.get("/manage/v1/billing", headers=org.headers)).json()["data"]
    used: int = billing["meters"]["monthly_requests"]["used"]
    return used
