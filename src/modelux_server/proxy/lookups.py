"""The proxy's reads, cached: who is calling (key authentication), what their
organization's plan allows, which routing config a `@slug` names, and which
provider credential a target uses (by id, by name, or the vendor's default:
provider/defaults.py).

Everything here is read before admission: a request the gateway rejects
(401, 400, 402, 422) never reaches the counter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelux_server.auth.management import bearer_token
from modelux_server.auth.repository import api_key_by_token_hash
from modelux_server.auth.tokens import API_KEY
from modelux_server.billing.service import org_plan
from modelux_server.budget.lookup import BudgetRule
from modelux_server.budget.lookup import applicable as applicable_budgets
from modelux_server.errors import Unauthorized, ValidationFailed
from modelux_server.kit.schemas import iso
from modelux_server.kit.secrets import token_hash
from modelux_server.models import Organization, ProviderCredential, RoutingConfigVersion
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
    expires_at: datetime | None = None  # checked on every call: a cached key must not outlive it


@dataclass(frozen=True)
class OrgContext:
    entitlements: Entitlements
    anchor_day: int
    plan_id: str
    suspended: bool = False


@dataclass(frozen=True)
class Credential:
    id: str
    upstream: UpstreamCredential


@dataclass(frozen=True)
class Several:
    """More than one live credential fits and none is chosen: the request must say which."""


# what a credential lookup found, as cached: one, several, or none
Choice = Credential | Several | None


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
        # keyed by what selects the credential: `id:...`, `vendor:...` or `name:...`
        self.credentials: TTLCache[tuple[str, str], Choice] = TTLCache(ttl)
        self.budget_rules: TTLCache[tuple[str, str, str], tuple[BudgetRule, ...]] = TTLCache(ttl)

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
        if caller.expires_at is not None and caller.expires_at <= self.rt.clock.now():
            raise Unauthorized(
                f"This API key expired at {iso(caller.expires_at)}. Create a new key, or extend "
                "this one's expiry (PATCH /manage/v1/api-keys/{id} with expires_at).",
                code="api_key_expired",
            )
        if self.rt.last_used is not None:
            self.rt.last_used.note("api_key", caller.key_id)  # in memory; written in the background
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
            expires_at=key.expires_at,
        )

    async def org(self, org_id: str) -> OrgContext:
        return await self.orgs.get(org_id, lambda: self._load_org(org_id))

    async def _load_org(self, org_id: str) -> OrgContext:
        async with self.rt.db.read_sessionmaker() as session:
            current = await org_plan(session, self.rt, org_id)
            org = await session.get(Organization, org_id)
            await session.commit()
        return OrgContext(
            entitlements=current.entitlements,
            anchor_day=current.state.anchor_at.day,
            plan_id=current.state.plan_id,
            suspended=org is not None and org.suspended_at is not None,
        )

    async def config(self, project_id: str, slug: str) -> RoutingConfigVersion | None:
        async def load() -> RoutingConfigVersion | None:
            async with self.rt.db.read_sessionmaker() as session:
                found = await routing.current_by_slug(session, project_id, slug)
                await session.commit()
            return found

        return await self.configs.get((project_id, slug), load)

    async def credential(self, org_id: str, vendor: str, provider_id: str | None) -> Credential | None:
        """The credential a config names by id; else the vendor's default, else its only one.

        Several live credentials for the vendor and no default: 422, raised here, before
        admission. None found: the caller's 422 (`no_provider_credential`).
        """

        async def load() -> Choice:
            async with self.rt.db.read_sessionmaker() as session:
                if provider_id:
                    found = await providers.find_live(session, org_id, provider_id)
                    rows = [found] if found is not None else []
                else:
                    rows = await providers.for_vendor(session, org_id, vendor)
                await session.commit()
            if len(rows) > 1 and not rows[0].is_default:
                return Several()
            return self._decrypted(rows[0]) if rows else None

        key = f"id:{provider_id}" if provider_id else f"vendor:{vendor}"
        choice = await self.credentials.get((org_id, key), load)
        if isinstance(choice, Several):
            raise ValidationFailed(
                f"This organization has several '{vendor}' provider credentials and none is the "
                "default. Mark one as the default (PATCH /manage/v1/providers/{id} with "
                '{"default": true}, or the dashboard\'s Providers page), or name one in the '
                "request: '@credential-name/model'.",
                code="ambiguous_provider_credential",
                param="model",
            )
        return choice

    async def named_credential(self, org_id: str, name: str) -> Credential:
        """The live credential called `name` (`@name/model`); 422 when none or several are."""

        async def load() -> Choice:
            async with self.rt.db.read_sessionmaker() as session:
                rows = await providers.named(session, org_id, name)
                await session.commit()
            if len(rows) > 1:
                return Several()
            return self._decrypted(rows[0]) if rows else None

        choice = await self.credentials.get((org_id, f"name:{name}"), load)
        if choice is None:
            raise ValidationFailed(
                f"No provider credential named '{name}' in this organization "
                "(GET /manage/v1/providers lists them).",
                code="no_provider_credential",
                param="model",
            )
        if isinstance(choice, Several):
            raise ValidationFailed(
                f"Several provider credentials are named '{name}'. Rename all but one "
                '(PATCH /manage/v1/providers/{id} with {"name": ...}) so the name picks one.',
                code="ambiguous_provider_credential",
                param="model",
            )
        return choice

    def _decrypted(self, row: ProviderCredential) -> Credential:
        secret = self.rt.encryptor.decrypt(row.secret_encrypted)
        return Credential(
            row.id, UpstreamCredential(vendor=row.vendor, api_key=secret, base_url=row.base_url)
        )

    async def config_slugs(self, project_id: str) -> list[str]:
        """The project's `@slug` models; not cached (listing models is rare and not counted)."""
        async with self.rt.db.read_sessionmaker() as session:
            slugs = await routing.live_slugs(session, project_id)
            await session.commit()
        return slugs

    async def vendors(self, org_id: str) -> list[str]:
        """The vendors the organization has credentials for; not cached, like `config_slugs`."""
        async with self.rt.db.read_sessionmaker() as session:
            found = await providers.live_vendors(session, org_id)
            await session.commit()
        return found

    async def budgets(self, caller: Caller) -> tuple[BudgetRule, ...]:
        """The spend budgets over the caller's organization, project and key (most have none)."""

        async def load() -> tuple[BudgetRule, ...]:
            async with self.rt.db.read_sessionmaker() as session:
                rows = await applicable_budgets(session, caller.org_id, caller.project_id, caller.key_id)
                await session.commit()
            return tuple(
                BudgetRule(
                    row.id,
                    row.org_id,
                    row.name,
                    row.cap_micros,
                    row.period,
                    row.action,
                    tuple(row.thresholds),
                )
                for row in rows
            )

        return await self.budget_rules.get((caller.org_id, caller.project_id, caller.key_id), load)

    def invalidate(self, **what: Any) -> None:
        if what.get("budgets"):
            self.budget_rules.clear()
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
