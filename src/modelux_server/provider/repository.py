"""SQL for provider credentials.

A deleted credential keeps its row (`deleted_at`) and is found by no lookup.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import get_owned, list_owned
from modelux_server.models import ProviderCredential

LIVE = ProviderCredential.deleted_at.is_(None)


async def get_live(session: AsyncSession, org_id: str, credential_id: str) -> ProviderCredential:
    return await get_owned(
        session, ProviderCredential, org_id, credential_id, label="provider credential", live=LIVE
    )


async def find_live(session: AsyncSession, org_id: str, credential_id: str) -> ProviderCredential | None:
    """A live credential of the organization, or None (the proxy's lookup of a target's `provider_id`)."""
    stmt = select(ProviderCredential).where(
        ProviderCredential.id == credential_id, ProviderCredential.org_id == org_id, LIVE
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_live(session: AsyncSession, org_id: str, page: PageRequest) -> Page[ProviderCredential]:
    return await list_owned(session, ProviderCredential, org_id, page, LIVE)


async def for_vendor(session: AsyncSession, org_id: str, vendor: str) -> ProviderCredential | None:
    """The organization's oldest live credential for a vendor (bare and vendor/model names)."""
    stmt = (
        select(ProviderCredential)
        .where(ProviderCredential.org_id == org_id, ProviderCredential.vendor == vendor, LIVE)
        .order_by(ProviderCredential.id)
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()
