"""Routing configs: versioned, validated at save, gated by plan features.

Downgrades never delete: a config whose strategy the plan no longer includes
stays stored, is reported inactive with the reason, refuses traffic with the
feature 402, and works again unchanged after a re-upgrade.

Every operation takes the acting principal and checks its role here (changes
need an admin), so the management API and the dashboard cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.audit.record import actor_of, record
from modelux_server.auth.principal import Principal
from modelux_server.billing.service import entitlements
from modelux_server.billing.summary import DormantItem
from modelux_server.errors import Conflict, NotFound, ValidationFailed
from modelux_server.kit.ids import new_id
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.models import RoutingConfig, RoutingConfigVersion
from modelux_server.plans.entitlements import Entitlements
from modelux_server.project import service as projects
from modelux_server.routing import repository
from modelux_server.routing.strategies import (
    SLUG_RE,
    STRATEGY_FEATURE,
    targets_of,
    validate_spec,
)
from modelux_server.services import Services


@dataclass(frozen=True)
class ConfigView:
    """A config as it answers: its live version, and whether the plan lets it run."""

    config: RoutingConfig
    version: RoutingConfigVersion
    active: bool
    inactive_reason: str | None


def required_features(strategy: str) -> list[str]:
    feature = STRATEGY_FEATURE.get(strategy)
    return [feature] if feature else []


def activity(ent: Entitlements, strategy: str) -> tuple[bool, str | None]:
    for feature in required_features(strategy):
        if not ent.has(feature):
            err = ent.feature_error(feature)
            return False, err.message
    return True, None


# ------------------------------------------------------------------ reads


async def list_configs(
    session: AsyncSession,
    rt: Services,
    principal: Principal,
    page: PageRequest,
    project_id: str | None = None,
) -> Page[ConfigView]:
    ent = await entitlements(session, rt, principal.org_id)
    found = await repository.list_live(session, principal.org_id, page, project_id)
    views = [await _view(session, ent, config) for config in found.items]
    return Page(items=views, next_cursor=found.next_cursor)


async def get(session: AsyncSession, rt: Services, principal: Principal, config_id: str) -> ConfigView:
    ent = await entitlements(session, rt, principal.org_id)
    config = await repository.get_live(session, principal.org_id, config_id)
    return await _view(session, ent, config)


async def list_versions(
    session: AsyncSession, principal: Principal, config_id: str
) -> Page[RoutingConfigVersion]:
    """Every version, newest first, on one page."""
    config = await repository.get_live(session, principal.org_id, config_id)
    return Page(items=await repository.versions(session, config.id), next_cursor=None)


async def get_version(
    session: AsyncSession, principal: Principal, config_id: str, version: int
) -> RoutingConfigVersion:
    config = await repository.get_live(session, principal.org_id, config_id)
    return await _version(session, config.id, version)


async def by_slug(session: AsyncSession, project_id: str, slug: str) -> RoutingConfigVersion | None:
    """The live version of `@slug` in a project (the proxy's lookup)."""
    return await repository.current_by_slug(session, project_id, slug)


async def inactive_configs(
    session: AsyncSession, rt: Services, org_id: str, ent: Entitlements
) -> list[DormantItem]:
    """Configs kept but switched off by `ent`'s plan (the billing summary's dormant items).

    Billing asks through `Services.dormant_sources` (registered in assembly.py).
    """
    dormant: list[DormantItem] = []
    for config, version in await repository.live_with_current_version(session, org_id):
        _, reason = activity(ent, version.strategy)
        if reason is not None:  # switched off, and this says why
            dormant.append(
                DormantItem(
                    kind="routing_config",
                    id=config.id,
                    slug=config.slug,
                    strategy=version.strategy,
                    reason=reason,
                )
            )
    return dormant


# ------------------------------------------------------------------ changes


async def create(
    session: AsyncSession,
    rt: Services,
    principal: Principal,
    *,
    project_id: str,
    slug: str,
    strategy: str,
    fields: dict[str, Any],
) -> ConfigView:
    principal.require("admin")
    ent = await entitlements(session, rt, principal.org_id)
    await projects.get(session, principal, project_id)
    if not SLUG_RE.fullmatch(slug):
        raise ValidationFailed("slug must be lowercase letters, digits, '-' or '_' (max 63)", param="slug")
    spec = validate_spec(strategy, fields)
    for feature in required_features(strategy):
        ent.require(feature)
    if await repository.slug_taken(session, project_id, slug):
        raise Conflict(f"A routing config '@{slug}' already exists in this project.", code="slug_taken")
    await _check_providers(session, principal.org_id, strategy, spec)
    await _check_graph(session, ent, project_id, slug, strategy, spec)
    now = rt.clock.now()
    config = RoutingConfig(
        id=new_id("rc"),
        org_id=principal.org_id,
        project_id=project_id,
        slug=slug,
        current_version=1,
        created_at=now,
    )
    version = RoutingConfigVersion(
        config_id=config.id,
        version=1,
        strategy=strategy,
        spec=spec,
        created_by=principal.actor,
        created_at=now,
    )
    session.add_all([config, version])
    await session.flush()
    await record(
        session,
        rt,
        principal.org_id,
        actor_of(principal),
        "routing_config.created",
        "routing_config",
        config.id,
        after=audited(config, version),
    )
    rt.invalidate(session, configs=True)
    return ConfigView(config, version, True, None)


async def update(
    session: AsyncSession,
    rt: Services,
    principal: Principal,
    config_id: str,
    *,
    strategy: str | None,
    fields: dict[str, Any],
) -> ConfigView:
    """Save a new version: the strategy's fields replace the old ones when any are given."""
    principal.require("admin")
    ent = await entitlements(session, rt, principal.org_id)
    config = await repository.get_live(session, principal.org_id, config_id)
    current = await _version(session, config.id, config.current_version)
    strategy = strategy or current.strategy
    spec = validate_spec(strategy, fields if fields else current.spec)
    for feature in required_features(strategy):
        ent.require(feature)
    await _check_providers(session, principal.org_id, strategy, spec)
    await _check_graph(session, ent, config.project_id, config.slug, strategy, spec)
    before = audited(config, current)
    view = await _new_version(session, rt, principal, config, strategy, spec)
    await record(
        session,
        rt,
        principal.org_id,
        actor_of(principal),
        "routing_config.updated",
        "routing_config",
        config.id,
        before=before,
        after=audited(config, view.version),
    )
    return view


async def rollback(
    session: AsyncSession, rt: Services, principal: Principal, config_id: str, version: int
) -> ConfigView:
    """Roll back by saving an old version again as the newest one."""
    principal.require("admin")
    ent = await entitlements(session, rt, principal.org_id)
    config = await repository.get_live(session, principal.org_id, config_id)
    old = await _version(session, config.id, version)
    for feature in required_features(old.strategy):
        ent.require(feature)
    await _check_providers(session, principal.org_id, old.strategy, old.spec)
    await _check_graph(session, ent, config.project_id, config.slug, old.strategy, old.spec)
    before = audited(config, await _version(session, config.id, config.current_version))
    view = await _new_version(session, rt, principal, config, old.strategy, dict(old.spec))
    await record(
        session,
        rt,
        principal.org_id,
        actor_of(principal),
        "routing_config.rolled_back",
        "routing_config",
        config.id,
        before=before,
        after={**audited(config, view.version), "restored_from": old.version},
    )
    return view


async def delete(session: AsyncSession, rt: Services, principal: Principal, config_id: str) -> RoutingConfig:
    principal.require("admin")
    config = await repository.get_live(session, principal.org_id, config_id)
    before = {"slug": config.slug, "project_id": config.project_id, "version": config.current_version}
    config.deleted_at = rt.clock.now()
    # free the slug for reuse while keeping the history under a tombstone name
    config.slug = f"{config.slug}~{config.id[-8:].lower()}"
    await record(
        session,
        rt,
        principal.org_id,
        actor_of(principal),
        "routing_config.deleted",
        "routing_config",
        config.id,
        before=before,
    )
    rt.invalidate(session, configs=True)
    return config


def audited(config: RoutingConfig, version: RoutingConfigVersion) -> dict[str, Any]:
    """What an audit event shows of a config: its version, strategy and each spec field
    (`spec.<field>`), so a new version's event names the fields it changed."""
    return {
        "slug": config.slug,
        "project_id": config.project_id,
        "version": version.version,
        "strategy": version.strategy,
        **{f"spec.{name}": value for name, value in version.spec.items()},
    }


async def _new_version(
    session: AsyncSession,
    rt: Services,
    principal: Principal,
    config: RoutingConfig,
    strategy: str,
    spec: dict[str, Any],
) -> ConfigView:
    config.current_version += 1
    version = RoutingConfigVersion(
        config_id=config.id,
        version=config.current_version,
        strategy=strategy,
        spec=spec,
        created_by=principal.actor,
        created_at=rt.clock.now(),
    )
    session.add(version)
    await session.flush()
    rt.invalidate(session, configs=True)
    return ConfigView(config, version, True, None)


async def _version(session: AsyncSession, config_id: str, version: int) -> RoutingConfigVersion:
    found = await repository.version(session, config_id, version)
    if found is None:
        raise NotFound(f"Routing config has no version {version}.", code="version_not_found")
    return found


async def _view(session: AsyncSession, ent: Entitlements, config: RoutingConfig) -> ConfigView:
    version = await _version(session, config.id, config.current_version)
    active, reason = activity(ent, version.strategy)
    return ConfigView(config, version, active, reason)


# ------------------------------------------------------------------ checks at save


async def _check_graph(
    session: AsyncSession,
    ent: Entitlements,
    project_id: str,
    slug: str,
    strategy: str,
    spec: dict[str, Any],
) -> None:
    """Targets exist, their strategies are in the plan, and no loop is formed."""
    versions = await repository.current_versions(session, project_id)
    graph = {s: targets_of(v.strategy, v.spec) for s, v in versions.items()}
    graph[slug] = targets_of(strategy, spec)
    for target in graph[slug]:
        if target == slug:
            raise ValidationFailed(f"rule target @{target} is this config itself", code="routing_loop")
        if target not in versions:
            raise ValidationFailed(
                f"rule target @{target} is not a routing config of this project",
                code="unknown_target",
            )
        for feature in required_features(versions[target].strategy):
            ent.require(feature)
    path = _find_cycle(graph, slug)
    if path:
        raise ValidationFailed("routing loop: " + " -> ".join("@" + s for s in path), code="routing_loop")


def _find_cycle(graph: dict[str, list[str]], start: str) -> list[str] | None:
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    while stack:
        node, path = stack.pop()
        for nxt in graph.get(node, []):
            if nxt == start:
                return [*path, nxt]
            if nxt not in path:
                stack.append((nxt, [*path, nxt]))
    return None


def _provider_refs(strategy: str, spec: dict[str, Any]) -> list[tuple[str, str]]:
    """Every `provider_id` the config names, with where it sits (`targets[0].provider_id`)."""
    if strategy == "single":
        return [("provider_id", spec["provider_id"])] if spec.get("provider_id") else []
    field = {"fallback": "targets", "ensemble": "members"}.get(strategy)
    if field is None:
        return []
    return [
        (f"{field}[{index}].provider_id", item["provider_id"])
        for index, item in enumerate(spec[field])
        if item.get("provider_id")
    ]


async def _check_providers(session: AsyncSession, org_id: str, strategy: str, spec: dict[str, Any]) -> None:
    """Each named provider credential is a live one of this organization.

    Another organization's id and a deleted or made-up one get the same answer,
    so the refusal tells nothing about other tenants.
    """
    refs = _provider_refs(strategy, spec)
    if not refs:
        return
    known = await repository.live_provider_ids(session, org_id, {provider_id for _, provider_id in refs})
    for param, provider_id in refs:
        if provider_id not in known:
            raise ValidationFailed(
                f"{param}: '{provider_id[:40]}' is not a provider credential of this organization",
                code="unknown_provider",
                param=param,
            )
