"""The proxy's reads, cached: who is calling (key authentication), what their
organization's plan allows, which routing config a `@slug` names, and which
provider credential a target uses.

Everything here is read before admission: a request the gateway rejects
(401, 400, 402, 422) never reaches the counter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelux_server.auth.management import bearer_token
from modelux_server.auth.repository import api_key_by_token_hash
from modelux_server.auth.tokens import API_KEY
from modelux_server.billing.service import org_plan
from modelux_server.errors import Unauthorized
from modelux_server.kit.secrets import token_hash
from modelux_server.models import ProviderCredential, RoutingConfigVersion
from modelux_server.plans.entitlements import Entitlements
from modelux_server.provider import repository as providers
from modelux_server.proxy.cache import TTLCache
from modelux_server.proxy.providers.base import UpstreamCredential
from modelux_server.routing import repository as routing
from modelux_server.services import Services


@dataclass(frozen=True)
class Caller:
    key_id: str
    project_id: str
    org_id: str
    rate_limit: int | None = None  # the key's own requests per minute, if it has one


@dataclass(frozen=True)
class OrgContext:
    entitlements: Entitlements
    anchor_day: int
    plan_id: str


@dataclass(frozen=True)
class Credential:
    id: str
    upstream: UpstreamCredential


class Lookups:
    """Cached reads for the hot path, with in-process invalidation hooks.

    Each read is one query in the owning domain's repository (auth, billing,
    routing, provider), made at most once per key at a time and kept for `ttl`
    seconds (`cache.py`).
    """

    def __init__(self, rt: Services, ttl: float = 1.0) -> None:
        self.rt = rt
        self.keys: TTLCache[str, Caller | None] = TTLCache(ttl)
        self.orgs: TTLCache[str, OrgContext] = TTLCache(ttl)
        self.configs: TTLCache[tuple[str, str], RoutingConfigVersion | None] = TTLCache(ttl)
        self.credentials: TTLCache[tuple[str, str], Credential | None] = TTLCache(ttl)

    async def caller(self, authorization: str | None) -> Caller:
        token = bearer_token(authorization)
        if token is None:
            raise Unauthorized(
                f"Missing API key. Send 'Authorization: Bearer {API_KEY}...'.", code="missing_api_key"
            )
        if not token.startswith(API_KEY):
            raise Unauthorized(f"The proxy needs a project API key ({API_KEY}...).")
        digest = token_hash(token)
        caller = await self.keys.get(digest, lambda: self._load_caller(digest))
        if caller is None:
            raise Unauthorized("Invalid or revoked API key.")
        return caller

    async def _load_caller(self, digest: str) -> Caller | None:
        async with self.rt.db.read_sessionmaker() as session:
            key = await api_key_by_token_hash(session, digest)
            await session.commit()
        if key is None or key.revoked_at is not None:
            return None
        return Caller(
            key_id=key.id,
            project_id=key.project_id,
            org_id=key.org_id,
            rate_limit=key.rate_limit_per_minute,
        )

    async def org(self, org_id: str) -> OrgContext:
        return await self.orgs.get(org_id, lambda: self._load_org(org_id))

    async def _load_org(self, org_id: str) -> OrgContext:
        async with self.rt.db.read_sessionmaker() as session:
            current = await org_plan(session, self.rt, org_id)
            await session.commit()
        return OrgContext(
            entitlements=current.entitlements,
            anchor_day=current.state.anchor_at.day,
            plan_id=current.state.plan_id,
        )

    async def config(self, project_id: str, slug: str) -> RoutingConfigVersion | None:
        async def load() -> RoutingConfigVersion | None:
            async with self.rt.db.read_sessionmaker() as session:
                found = await routing.current_by_slug(session, project_id, slug)
                await session.commit()
            return found

        return await self.configs.get((project_id, slug), load)

    async def credential(self, org_id: str, vendor: str, provider_id: str | None) -> Credential | None:
        """An explicit credential by id, else the org's first one for the vendor."""

        async def load() -> Credential | None:
            async with self.rt.db.read_sessionmaker() as session:
                row: ProviderCredential | None
                if provider_id:
                    row = await providers.find_live(session, org_id, provider_id)
                else:
                    row = await providers.for_vendor(session, org_id, vendor)
                await session.commit()
            if row is None:
                return None
            secret = self.rt.encryptor.decrypt(row.secret_encrypted)
            return Credential(
                row.id, UpstreamCredential(vendor=row.vendor, api_key=secret, base_url=row.base_url)
            )

        return await self.credentials.get((org_id, provider_id or f"vendor:{vendor}"), load)

    async def config_slugs(self, project_id: str) -> list[str]:
        """The project's `@slug` models; not cached (listing models is rare and not counted)."""
        async with self.rt.db.read_sessionmaker() as session:
            slugs = await routing.live_slugs(session, project_id)
            await session.commit()
        return slugs

    def invalidate(self, **what: Any) -> None:
        if "token_hash" in what:
            self.keys.drop(what["token_hash"])
        if what.get("all_keys"):
            self.keys.clear()
        if "org_id" in what:
            self.orgs.drop(what["org_id"])
        if what.get("configs"):
            self.configs.clear()
        if what.get("credentials"):
            self.credentials.clear()
