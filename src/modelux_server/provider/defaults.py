"""Which credential is its vendor's default: the rules every caller saves through.

`vendor/model` and bare model names use the vendor's default credential
(proxy/lookups.py); a request picks another by name with `@name/model`.

* A vendor's first live credential becomes its default, unless it is created
  with `"default": false`: most organizations have one key per vendor, and it
  should just work.
* Marking a credential the default unsets the vendor's others in the same
  transaction (the partial unique index of migration 0011 allows one).
* A deletion that leaves the vendor exactly one live credential makes that one
  the default. Deleting the default while two or more remain leaves none: the
  gateway does not guess which key to spend, so `vendor/model` answers 422
  `ambiguous_provider_credential` until one is marked.

Each change holds the organization's row first, so two concurrent changes of
one organization's defaults queue instead of meeting on the unique index.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.models import ProviderCredential
from modelux_server.provider import repository


async def on_create(session: AsyncSession, org_id: str, vendor: str, asked: bool | None) -> bool:
    """Whether a new credential is the default: as asked, else if it is the vendor's first.

    Call before the new row is added: a new default first unsets the current one.
    """
    await repository.hold_defaults(session, org_id)
    default = asked if asked is not None else not await repository.for_vendor(session, org_id, vendor)
    if default:
        await repository.clear_default(session, org_id, vendor)
    return default


async def mark(session: AsyncSession, credential: ProviderCredential, default: bool) -> None:
    """Make a live credential its vendor's default, or stop it being one (leaving none)."""
    if credential.is_default == default:
        return
    await repository.hold_defaults(session, credential.org_id)
    if default:
        await repository.clear_default(session, credential.org_id, credential.vendor)
    credential.is_default = default


async def after_delete(session: AsyncSession, credential: ProviderCredential) -> None:
    """A deleted credential is no default; a single one left for its vendor becomes it."""
    await repository.hold_defaults(session, credential.org_id)
    credential.is_default = False
    remaining = await repository.for_vendor(session, credential.org_id, credential.vendor)
    if len(remaining) == 1:
        remaining[0].is_default = True
