"""Routing configs: versioned, validated at save, gated by plan features.

Downgrades never delete: a config whose strategy the plan no longer includes
stays stored, is reported inactive with the reason, refuses traffic with the
feature 402, and works again unchanged after a re-upgrade.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing.entitlements import Entitlements
from modelux_server.errors import Conflict, NotFound, ValidationFailed
from modelux_server.kit.ids import new_id
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import get_owned, list_owned
from modelux_server.models import ProviderCredential, RoutingConfig, RoutingConfigVersion
from modelux_server.project import service as projects
from modelux_server.routing.strategies import (
    SLUG_RE,
    STRATEGY_FEATURE,
    targets_of,
    validate_spec,
)
from modelux_server.runtime import Runtime


@dataclass(frozen=True)
class ConfigView:
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


async def _current_versions(session: AsyncSession, project_id: str) -> dict[str, RoutingConfigVersion]:
    stmt = (
        select(RoutingConfig.slug, RoutingConfigVersion)
        .join(RoutingConfigVersion, RoutingConfigVersion.config_id == RoutingConfig.id)
        .where(
            RoutingConfig.project_id == project_id,
            RoutingConfig.deleted_at.is_(None),
            RoutingConfigVersion.version == RoutingConfig.current_version,
        )
    )
    return {slug: version for slug, version in (await session.execute(stmt)).all()}


async def _check_graph(
    session: AsyncSession,
    ent: Entitlements,
    project_id: str,
    slug: str,
    strategy: str,
    spec: dict[str, Any],
) -> None:
    """Targets exist, their strategies are in the plan, and no loop is formed."""
    versions = await _current_versions(session, project_id)
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
    stmt = select(ProviderCredential.id).where(
        ProviderCredential.id.in_({provider_id for _, provider_id in refs}),
        ProviderCredential.org_id == org_id,
        ProviderCredential.deleted_at.is_(None),
    )
    known = set((await session.execute(stmt)).scalars())
    for param, provider_id in refs:
        if provider_id not in known:
            raise ValidationFailed(
                f"{param}: '{provider_id[:40]}' is not a provider credential of this organization",
                code="unknown_provider",
                param=param,
            )


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


async def create(
    session: AsyncSession,
    rt: Runtime,
    ent: Entitlements,
    org_id: str,
    *,
    project_id: str,
    slug: str,
    strategy: str,
    fields: dict[str, Any],
    actor: str | None,
) -> ConfigView:
    await projects.get(session, org_id, project_id)
    if not SLUG_RE.fullmatch(slug):
        raise ValidationFailed("slug must be lowercase letters, digits, '-' or '_' (max 63)", param="slug")
    spec = validate_spec(strategy, fields)
    for feature in required_features(strategy):
        ent.require(feature)
    taken = await session.execute(
        select(RoutingConfig.id).where(
            RoutingConfig.project_id == project_id,
            RoutingConfig.slug == slug,
        )
    )
    if taken.first() is not None:
        raise Conflict(f"A routing config '@{slug}' already exists in this project.", code="slug_taken")
    await _check_providers(session, org_id, strategy, spec)
    await _check_graph(session, ent, project_id, slug, strategy, spec)
    now = rt.clock.now()
    config = RoutingConfig(
        id=new_id("rc"),
        org_id=org_id,
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
        created_by=actor,
        created_at=now,
    )
    session.add_all([config, version])
    await session.flush()
    rt.invalidate(configs=True)
    return ConfigView(config, version, True, None)


async def update(
    session: AsyncSession,
    rt: Runtime,
    ent: Entitlements,
    org_id: str,
    config_id: str,
    *,
    strategy: str | None,
    fields: dict[str, Any],
    actor: str | None,
) -> ConfigView:
    config = await _get_config(session, org_id, config_id)
    current = await _version(session, config.id, config.current_version)
    strategy = strategy or current.strategy
    spec = validate_spec(strategy, fields if fields else current.spec)
    for feature in required_features(strategy):
        ent.require(feature)
    await _check_providers(session, org_id, strategy, spec)
    await _check_graph(session, ent, config.project_id, config.slug, strategy, spec)
    return await _new_version(session, rt, config, strategy, spec, actor)


async def rollback(
    session: AsyncSession,
    rt: Runtime,
    ent: Entitlements,
    org_id: str,
    config_id: str,
    version: int,
    actor: str | None,
) -> ConfigView:
    """Roll back by saving an old version again as the newest one."""
    config = await _get_config(session, org_id, config_id)
    old = await _version(session, config.id, version)
    for feature in required_features(old.strategy):
        ent.require(feature)
    await _check_providers(session, org_id, old.strategy, old.spec)
    await _check_graph(session, ent, config.project_id, config.slug, old.strategy, old.spec)
    return await _new_version(session, rt, config, old.strategy, dict(old.spec), actor)


async def _new_version(
    session: AsyncSession,
    rt: Runtime,
    config: RoutingConfig,
    strategy: str,
    spec: dict[str, Any],
    actor: str | None,
) -> ConfigView:
    config.current_version += 1
    version = RoutingConfigVersion(
        config_id=config.id,
        version=config.current_version,
        strategy=strategy,
        spec=spec,
        created_by=actor,
        created_at=rt.clock.now(),
    )
    session.add(version)
    await session.flush()
    rt.invalidate(configs=True)
    return ConfigView(config, version, True, None)


async def _get_config(session: AsyncSession, org_id: str, config_id: str) -> RoutingConfig:
    return await get_owned(
        session,
        RoutingConfig,
        org_id,
        config_id,
        label="routing config",
        live=RoutingConfig.deleted_at.is_(None),
    )


async def _version(session: AsyncSession, config_id: str, version: int) -> RoutingConfigVersion:
    stmt = select(RoutingConfigVersion).where(
        RoutingConfigVersion.config_id == config_id, RoutingConfigVersion.version == version
    )
    found = (await session.execute(stmt)).scalar_one_or_none()
    if found is None:
        raise NotFound(f"Routing config has no version {version}.", code="version_not_found")
    return found


async def get(session: AsyncSession, ent: Entitlements, org_id: str, config_id: str) -> ConfigView:
    config = await _get_config(session, org_id, config_id)
    return await _view(session, ent, config)


async def _view(session: AsyncSession, ent: Entitlements, config: RoutingConfig) -> ConfigView:
    version = await _version(session, config.id, config.current_version)
    active, reason = activity(ent, version.strategy)
    return ConfigView(config, version, active, reason)


async def list_configs(
    session: AsyncSession,
    ent: Entitlements,
    org_id: str,
    page: PageRequest,
    project_id: str | None = None,
) -> tuple[Page[RoutingConfig], list[ConfigView]]:
    filters: list[Any] = [RoutingConfig.deleted_at.is_(None)]
    if project_id:
        filters.append(RoutingConfig.project_id == project_id)
    result = await list_owned(session, RoutingConfig, org_id, page, *filters)
    return result, [await _view(session, ent, c) for c in result.items]


async def list_versions(session: AsyncSession, org_id: str, config_id: str) -> list[RoutingConfigVersion]:
    config = await _get_config(session, org_id, config_id)
    stmt = (
        select(RoutingConfigVersion)
        .where(RoutingConfigVersion.config_id == config.id)
        .order_by(RoutingConfigVersion.version.desc())
    )
    return list((await session.execute(stmt)).scalars())


async def get_version(
    session: AsyncSession, org_id: str, config_id: str, version: int
) -> RoutingConfigVersion:
    config = await _get_config(session, org_id, config_id)
    return await _version(session, config.id, version)


async def delete(session: AsyncSession, rt: Runtime, org_id: str, config_id: str) -> RoutingConfig:
    config = await _get_config(session, org_id, config_id)
    config.deleted_at = rt.clock.now()
    # free the slug for reuse while keeping the history under a tombstone name
    config.slug = f"{config.slug}~{config.id[-8:].lower()}"
    rt.invalidate(configs=True)
    return config


async def by_slug(session: AsyncSession, project_id: str, slug: str) -> RoutingConfigVersion | None:
    """The live version of `@slug` in a project (the proxy's lookup)."""
    stmt = (
        select(RoutingConfigVersion)
        .join(RoutingConfig, RoutingConfigVersion.config_id == RoutingConfig.id)
        .where(
            RoutingConfig.project_id == project_id,
            RoutingConfig.slug == slug,
            RoutingConfig.deleted_at.is_(None),
            RoutingConfigVersion.version == RoutingConfig.current_version,
        )
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def inactive_configs(
    session: AsyncSession, rt: Runtime, org_id: str, ent: Entitlements
) -> list[dict[str, Any]]:
    """Configs kept but switched off by the current plan (the billing page's dormant items)."""
    stmt = (
        select(RoutingConfig, RoutingConfigVersion)
        .join(RoutingConfigVersion, RoutingConfigVersion.config_id == RoutingConfig.id)
        .where(
            RoutingConfig.org_id == org_id,
            RoutingConfig.deleted_at.is_(None),
            RoutingConfigVersion.version == RoutingConfig.current_version,
        )
        .order_by(RoutingConfig.id)
    )
    dormant = []
    for config, version in (await session.execute(stmt)).all():
        active, reason = activity(ent, version.strategy)
        if not active:
            dormant.append(
                {
                    "kind": "routing_config",
                    "id": config.id,
                    "slug": config.slug,
                    "strategy": version.strategy,
                    "reason": reason,
                }
            )
    return dormant
