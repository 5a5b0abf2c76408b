"""SQL for routing configs and their versions.

A config's live version is the one numbered `current_version`; a deleted
config keeps its row and history (`deleted_at`) and is found by no lookup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import get_owned, list_owned
from modelux_server.models import ProviderCredential, RoutingConfig, RoutingConfigVersion

LIVE = RoutingConfig.deleted_at.is_(None)
CURRENT = RoutingConfigVersion.version == RoutingConfig.current_version


async def get_live(session: AsyncSession, org_id: str, config_id: str) -> RoutingConfig:
    return await get_owned(session, RoutingConfig, org_id, config_id, label="routing config", live=LIVE)


async def list_live(
    session: AsyncSession, org_id: str, page: PageRequest, project_id: str | None = None
) -> Page[RoutingConfig]:
    filters = [LIVE] if not project_id else [LIVE, RoutingConfig.project_id == project_id]
    return await list_owned(session, RoutingConfig, org_id, page, *filters)


async def slug_taken(session: AsyncSession, project_id: str, slug: str) -> bool:
    """Whether a config of the project, deleted ones included, has this slug."""
    stmt = select(RoutingConfig.id).where(RoutingConfig.project_id == project_id, RoutingConfig.slug == slug)
    return (await session.execute(stmt)).first() is not None


async def version(session: AsyncSession, config_id: str, number: int) -> RoutingConfigVersion | None:
    stmt = select(RoutingConfigVersion).where(
        RoutingConfigVersion.config_id == config_id, RoutingConfigVersion.version == number
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def versions(session: AsyncSession, config_id: str) -> list[RoutingConfigVersion]:
    """Every version of a config, newest first."""
    stmt = (
        select(RoutingConfigVersion)
        .where(RoutingConfigVersion.config_id == config_id)
        .order_by(RoutingConfigVersion.version.desc())
    )
    return list((await session.execute(stmt)).scalars())


async def current_versions(session: AsyncSession, project_id: str) -> dict[str, RoutingConfigVersion]:
    """The live version of each live config of a project, by slug."""
    stmt = (
        select(RoutingConfig.slug, RoutingConfigVersion)
        .join(RoutingConfigVersion, RoutingConfigVersion.config_id == RoutingConfig.id)
        .where(RoutingConfig.project_id == project_id, LIVE, CURRENT)
    )
    return {slug: found for slug, found in (await session.execute(stmt)).all()}


async def current_by_slug(session: AsyncSession, project_id: str, slug: str) -> RoutingConfigVersion | None:
    """The live version of `@slug` in a project (the proxy's lookup)."""
    stmt = (
        select(RoutingConfigVersion)
        .join(RoutingConfig, RoutingConfigVersion.config_id == RoutingConfig.id)
        .where(RoutingConfig.project_id == project_id, RoutingConfig.slug == slug, LIVE, CURRENT)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def live_slugs(session: AsyncSession, project_id: str) -> list[str]:
    """The project's live configs' slugs, in order (what the proxy's `GET /v1/models` lists)."""
    stmt = (
        select(RoutingConfig.slug)
        .where(RoutingConfig.project_id == project_id, LIVE)
        .order_by(RoutingConfig.slug)
    )
    return list((await session.execute(stmt)).scalars())


async def live_with_current_version(
    session: AsyncSession, org_id: str
) -> Sequence[tuple[RoutingConfig, RoutingConfigVersion]]:
    """Every live config of an organization with its live version, in id order."""
    stmt = (
        select(RoutingConfig, RoutingConfigVersion)
        .join(RoutingConfigVersion, RoutingConfigVersion.config_id == RoutingConfig.id)
        .where(RoutingConfig.org_id == org_id, LIVE, CURRENT)
        .order_by(RoutingConfig.id)
    )
    return (await session.execute(stmt)).all()


async def live_provider_ids(session: AsyncSession, org_id: str, provider_ids: Iterable[str]) -> set[str]:
    """Which of these ids are live provider credentials of the organization."""
    stmt = select(ProviderCredential.id).where(
        ProviderCredential.id.in_(set(provider_ids)),
        ProviderCredential.org_id == org_id,
        ProviderCredential.deleted_at.is_(None),
    )
    return set((await session.execute(stmt)).scalars())
