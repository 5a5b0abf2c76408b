"""Who is calling the proxy and what their organization may do, cached.

Everything here is read before admission: a request the gateway rejects
(401, 400, 402, 422) never reaches the counter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from modelux_server.auth.management import bearer_token
from modelux_server.billing.entitlements import Entitlements
from modelux_server.billing.service import org_plan
from modelux_server.errors import Unauthorized
from modelux_server.kit.secrets import token_hash
from modelux_server.models import ApiKey, ProviderCredential, RoutingConfigVersion
from modelux_server.provider import service as providers
from modelux_server.proxy.cache import TTLCache
from modelux_server.proxy.providers.base import UpstreamCredential
from modelux_server.routing import service as routing
from modelux_server.runtime import Runtime

PREFIX = "mlx_sk_"


@dataclass(frozen=True)
class Caller:
    key_id: str
    project_id: str
    org_id: str


@dataclass(frozen=True)
class OrgContext:
    entitlements: Entitlements
    anchor_day: int
    plan_id: str


@dataclass(frozen=True)
class Credential:
    id: str
    upstream: UpstreamCredential


class ProxyContext:
    """Cached reads for the hot path, with in-process invalidation hooks."""

    def __init__(self, rt: Runtime, ttl: float = 1.0) -> None:
        self.rt = rt
        self.keys: TTLCache[str, Caller | None] = TTLCache(ttl)
        self.orgs: TTLCache[str, OrgContext] = TTLCache(ttl)
        self.configs: TTLCache[tuple[str, str], RoutingConfigVersion | None] = TTLCache(ttl)
        self.credentials: TTLCache[tuple[str, str], Credential | None] = TTLCache(ttl)

    async def caller(self, authorization: str | None) -> Caller:
        token = bearer_token(authorization)
        if token is None:
            raise Unauthorized(
                "Missing API key. Send 'Authorization: Bearer mlx_sk_...'.", code="missing_api_key"
            )
        if not token.startswith(PREFIX):
            raise Unauthorized("The proxy needs a project API key (mlx_sk_...).")
        digest = token_hash(token)
        caller = await self.keys.get(digest, lambda: self._load_caller(digest))
        if caller is None:
            raise Unauthorized("Invalid or revoked API key.")
        return caller

    async def _load_caller(self, digest: str) -> Caller | None:
        async with self.rt.db.read_sessionmaker() as session:
            key = (
                await session.execute(select(ApiKey).where(ApiKey.token_hash == digest))
            ).scalar_one_or_none()
            await session.commit()
        if key is None or key.revoked_at is not None:
            return None
        return Caller(key_id=key.id, project_id=key.project_id, org_id=key.org_id)

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
                found = await routing.by_slug(session, project_id, slug)
                await session.commit()
            return found

        return await self.configs.get((project_id, slug), load)

    async def credential(self, org_id: str, vendor: str, provider_id: str | None) -> Credential | None:
        """An explicit credential by id, else the org's first one for the vendor."""

        async def load() -> Credential | None:
            async with self.rt.db.read_sessionmaker() as session:
                row: ProviderCredential | None
                if provider_id:
                    row = (
                        await session.execute(
                            select(ProviderCredential).where(
                                ProviderCredential.id == provider_id,
                                ProviderCredential.org_id == org_id,
                                ProviderCredential.deleted_at.is_(None),
                            )
                        )
                    ).scalar_one_or_none()
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
