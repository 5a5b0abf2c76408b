"""Provider credentials: upstream keys, encrypted at rest, never returned."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.billing.service import reserve_slot
from modelux_server.errors import ValidationFailed
from modelux_server.kit.ids import new_id
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import get_owned, list_owned
from modelux_server.kit.secrets import masked_hint
from modelux_server.models import ProviderCredential
from modelux_server.runtime import Runtime

VENDORS = (
    "openai",
    "anthropic",
    "google",
    "azure",
    "bedrock",
    "groq",
    "together",
    "fireworks",
    "mistral",
    "openai_compatible",
)


def _check_vendor(vendor: str) -> None:
    if vendor not in VENDORS:
        raise ValidationFailed(
            f"unknown vendor '{vendor}' (known: {', '.join(VENDORS)})",
            code="unknown_vendor",
            param="vendor",
        )


async def create(
    session: AsyncSession,
    rt: Runtime,
    org_id: str,
    *,
    vendor: str,
    name: str,
    api_key: str,
    base_url: str | None,
) -> ProviderCredential:
    _check_vendor(vendor)
    await reserve_slot(session, rt, org_id, "provider_credentials")
    credential = ProviderCredential(
        id=new_id("prov"),
        org_id=org_id,
        vendor=vendor,
        name=name,
        base_url=base_url,
        secret_encrypted=rt.encryptor.encrypt(api_key),
        hint=masked_hint(api_key),
        created_at=rt.clock.now(),
    )
    session.add(credential)
    await session.flush()
    rt.invalidate(credentials=True)
    return credential


async def list_credentials(session: AsyncSession, org_id: str, page: PageRequest) -> Page[ProviderCredential]:
    return await list_owned(
        session, ProviderCredential, org_id, page, ProviderCredential.deleted_at.is_(None)
    )


async def get(session: AsyncSession, org_id: str, credential_id: str) -> ProviderCredential:
    return await get_owned(
        session,
        ProviderCredential,
        org_id,
        credential_id,
        label="provider credential",
        live=ProviderCredential.deleted_at.is_(None),
    )


async def update_credential(
    session: AsyncSession, rt: Runtime, org_id: str, credential_id: str, changes: dict[str, object]
) -> ProviderCredential:
    credential = await get(session, org_id, credential_id)
    if "name" in changes:
        credential.name = str(changes["name"])
    if "base_url" in changes:
        credential.base_url = changes["base_url"]  # type: ignore[assignment]
    if changes.get("api_key"):
        secret = str(changes["api_key"])
        credential.secret_encrypted = rt.encryptor.encrypt(secret)
        credential.hint = masked_hint(secret)
    rt.invalidate(credentials=True)
    return credential


async def delete(session: AsyncSession, rt: Runtime, org_id: str, credential_id: str) -> ProviderCredential:
    credential = await get(session, org_id, credential_id)
    credential.deleted_at = rt.clock.now()
    rt.invalidate(credentials=True)
    return credential


async def for_vendor(session: AsyncSession, org_id: str, vendor: str) -> ProviderCredential | None:
    """The organization's oldest live credential for a vendor (bare and vendor/model names)."""
    stmt = (
        select(ProviderCredential)
        .where(
            ProviderCredential.org_id == org_id,
            ProviderCredential.vendor == vendor,
            ProviderCredential.deleted_at.is_(None),
        )
        .order_by(ProviderCredential.id)
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()
