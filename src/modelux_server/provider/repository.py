"""SQL for provider credentials.

A deleted credential keeps its row (`deleted_at`) and is found by no lookup.
At most one live credential per organization and vendor is its default
(`is_default`, a partial unique index: migration 0011).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.kit.db import lock_row
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import get_owned, list_owned
from modelux_server.models import Organization, ProviderCredential

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


async def for_vendor(session: AsyncSession, org_id: str, vendor: str) -> list[ProviderCredential]:
    """The live credentials that could serve `vendor/model`: the default first, at most two.

    One row, or a default first, is the choice; two without a default mean there is none.
    """
    stmt = (
        select(ProviderCredential)
        .where(ProviderCredential.org_id == org_id, ProviderCredential.vendor == vendor, LIVE)
        .order_by(ProviderCredential.is_default.desc(), ProviderCredential.id)
        .limit(2)
    )
    return list((await session.execute(stmt)).scalars())


async def named(session: AsyncSession, org_id: str, name: str) -> list[ProviderCredential]:
    """The live credentials called `name` (`@name/model`), at most two: names are not unique."""
    stmt = (
        select(ProviderCredential)
        .where(ProviderCredential.org_id == org_id, ProviderCredential.name == name, LIVE)
        .order_by(ProviderCredential.id)
        .limit(2)
    )
    return list((await session.execute(stmt)).scalars())


async def hold_defaults(session: AsyncSession, org_id: str) -> None:
    """Serialize the organization's default changes until commit (its row, FOR UPDATE).

    Two concurrent "make this the default" would otherwise both clear the old
    one and meet on the unique index as an IntegrityError.
    """
    await lock_row(session, Organization, org_id)


async def clear_default(session: AsyncSession, org_id: str, vendor: str) -> None:
    """No credential of the vendor is the default any more (run before setting a new one)."""
    await session.execute(
        update(ProviderCredential)
        .where(
            ProviderCredential.org_id == org_id,
            ProviderCredential.vendor == vendor,
            ProviderCredential.is_default.is_(True),
        )
        .values(is_default=False)
    )


async def live_vendors(session: AsyncSession, org_id: str) -> list[str]:
    """The vendors the organization holds a live credential for, in order (`GET /v1/models`)."""
    stmt = (
        select(ProviderCredential.vendor)
        .where(ProviderCredential.org_id == org_id, LIVE)
        .distinct()
        .order_by(ProviderCredential.vendor)
    )
    return list((await session.execute(stmt)).scalars())
