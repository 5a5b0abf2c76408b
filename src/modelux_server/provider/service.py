"""Provider credentials: upstream keys, encrypted at rest, never returned.

Every operation takes the acting principal and checks its role here; the
base_url rule (`check_base_url`) is the one every caller saves through.
"""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.audit.record import actor_of, record
from modelux_server.auth.principal import Principal
from modelux_server.billing.service import reserve_slot
from modelux_server.errors import ValidationFailed
from modelux_server.kit.egress import (
    NotHttpURL,
    Unresolvable,
    host_admitted,
    http_host_port,
    literal_address,
    policy_for,
    refusal,
)
from modelux_server.kit.ids import new_id
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import add
from modelux_server.kit.secrets import masked_hint
from modelux_server.models import ProviderCredential
from modelux_server.organization.verification import require_verified
from modelux_server.provider import defaults, repository, vendors
from modelux_server.provider.schemas import BASE_URL_MAX, VENDORS
from modelux_server.services import Services

_HOST = re.compile(r"^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?\.?$")
# A last label like this makes a host an IPv4 address in some other notation
# (127.1, 0x7f.1, 2130706433), which resolvers and HTTP clients read differently.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


def _invalid_url(message: str) -> ValidationFailed:
    return ValidationFailed(f"base_url {message}", code="invalid_base_url", param="base_url")


def _url_shape(value: object) -> tuple[str, str, int]:
    """The URL without trailing slashes, its host and port; 422 for any other shape."""
    if not isinstance(value, str):
        raise _invalid_url("must be a string")
    if len(value) > BASE_URL_MAX:
        raise _invalid_url(f"must be at most {BASE_URL_MAX} characters")
    if not value.isascii() or not value.isprintable() or " " in value or "\\" in value:
        raise _invalid_url("must be printable ASCII without spaces (use punycode and percent-encoding)")
    try:
        host, port = http_host_port(value)
    except NotHttpURL as exc:
        raise _invalid_url(str(exc)) from None
    if "?" in value or "#" in value:
        raise _invalid_url("must not contain a query string or a fragment")
    if literal_address(host) is None:
        if not _HOST.match(host):
            raise _invalid_url("has an invalid host name")
        if _NUMERIC_LABEL.match(host.rstrip(".").rsplit(".", 1)[-1]):
            raise _invalid_url("must write an IPv4 address as four decimal numbers")
    return value.rstrip("/"), host, port


async def check_base_url(rt: Services, value: object) -> str | None:
    """The one validator of a provider's base_url: REST, the dashboard and MCP all save through it.

    The URL's shape first (http(s), no user info, query or fragment, the column's
    length), then the egress policy on its host: an IP literal as it is, a name by
    every address it resolves to now. The connect-time check still applies later.
    """
    if value is None:
        return None
    url, host, port = _url_shape(value)
    try:
        admitted = await host_admitted(policy_for(rt.settings.egress_allow), host, port)
    except Unresolvable:
        raise ValidationFailed(
            f"base_url host '{host}' does not resolve to an address.",
            code="unresolvable_host",
            param="base_url",
        ) from None
    if not admitted:
        raise refusal(
            f"base_url host '{host}' is not a public address, and the gateway's egress "
            "policy does not admit it (your administrator can allow it).",
            param="base_url",
        )
    return url


def _check_vendor(vendor: str) -> None:
    if vendor not in VENDORS:
        raise ValidationFailed(
            f"unknown vendor '{vendor}' (known: {', '.join(VENDORS)})",
            code="unknown_vendor",
            param="vendor",
        )


def _check_api_key(vendor: str, api_key: str) -> None:
    """A key whose shape the vendor fixes (Bedrock's parts) is checked when it is saved."""
    if vendor != "bedrock":
        return
    try:
        vendors.parse_bedrock_key(api_key)
    except vendors.InvalidBedrockKey as exc:
        raise ValidationFailed(str(exc), code="invalid_api_key_format", param="api_key") from None


def _check_endpoint(vendor: str, base_url: str | None) -> None:
    spec = vendors.get(vendor)
    if base_url is None and spec is not None and spec.base_url_required:
        raise ValidationFailed(
            f"vendor '{vendor}' has no default endpoint: give its base_url",
            code="base_url_required",
            param="base_url",
        )


async def create(
    session: AsyncSession,
    rt: Services,
    principal: Principal,
    *,
    vendor: str,
    name: str,
    api_key: str,
    base_url: str | None,
    default: bool | None = None,
) -> ProviderCredential:
    """Store a credential; `default` None means: the default if it is the vendor's first."""
    principal.require("admin")
    _check_vendor(vendor)
    _check_api_key(vendor, api_key)
    base_url = await check_base_url(rt, base_url)
    _check_endpoint(vendor, base_url)
    await require_verified(session, rt, principal.org_id)
    await reserve_slot(session, rt, principal.org_id, "provider_credentials")
    is_default = await defaults.on_create(session, principal.org_id, vendor, default)
    credential = ProviderCredential(
        id=new_id("prov"),
        org_id=principal.org_id,
        vendor=vendor,
        name=name,
        base_url=base_url,
        secret_encrypted=rt.encryptor.encrypt(api_key),
        hint=masked_hint(api_key),
        created_at=rt.clock.now(),
        is_default=is_default,
    )
    await add(session, credential)
    await record(
        session,
        rt,
        principal.org_id,
        actor_of(principal),
        "provider_credential.created",
        "provider_credential",
        credential.id,
        after=audited(credential),
    )
    rt.invalidate(session, credentials=True)
    return credential


async def list_credentials(
    session: AsyncSession, principal: Principal, page: PageRequest
) -> Page[ProviderCredential]:
    return await repository.list_live(session, principal.org_id, page)


async def get(session: AsyncSession, principal: Principal, credential_id: str) -> ProviderCredential:
    return await repository.get_live(session, principal.org_id, credential_id)


async def update(
    session: AsyncSession, rt: Services, principal: Principal, credential_id: str, changes: dict[str, object]
) -> ProviderCredential:
    """Apply the fields a PATCH body set (`ProviderUpdate.model_dump(exclude_unset=True)`)."""
    principal.require("admin")
    credential = await repository.get_live(session, principal.org_id, credential_id)
    before = audited(credential)
    if changes.get("api_key"):
        _check_api_key(credential.vendor, str(changes["api_key"]))
    if "base_url" in changes:
        base_url = await check_base_url(rt, changes["base_url"])
        if base_url != credential.base_url and not changes.get("api_key"):
            # otherwise the stored key could be sent to a host of the caller's choosing
            raise ValidationFailed(
                "Changing base_url needs the api_key again: a stored key is only sent "
                "to the endpoint it was saved for.",
                code="api_key_required",
                param="api_key",
            )
        _check_endpoint(credential.vendor, base_url)
        credential.base_url = base_url
    if "name" in changes:
        credential.name = str(changes["name"])
    if changes.get("api_key"):
        secret = str(changes["api_key"])
        credential.secret_encrypted = rt.encryptor.encrypt(secret)
        credential.hint = masked_hint(secret)
    if "default" in changes:
        await defaults.mark(session, credential, bool(changes["default"]))
    after = audited(credential)
    if changes.get("api_key"):
        # a new key whose hint happens to match the old one's is still a change
        after["key_replaced"] = True
    if after != before:
        await record(
            session,
            rt,
            principal.org_id,
            actor_of(principal),
            "provider_credential.updated",
            "provider_credential",
            credential.id,
            before=before,
            after=after,
        )
    rt.invalidate(session, credentials=True)
    return credential


async def delete(
    session: AsyncSession, rt: Services, principal: Principal, credential_id: str
) -> ProviderCredential:
    principal.require("admin")
    credential = await repository.get_live(session, principal.org_id, credential_id)
    before = audited(credential)
    credential.deleted_at = rt.clock.now()
    await defaults.after_delete(session, credential)
    await record(
        session,
        rt,
        principal.org_id,
        actor_of(principal),
        "provider_credential.deleted",
        "provider_credential",
        credential.id,
        before=before,
    )
    rt.invalidate(session, credentials=True)
    return credential


def audited(credential: ProviderCredential) -> dict[str, object]:
    """What an audit event shows of a credential: its masked hint, never the key or its ciphertext."""
    return {
        "vendor": credential.vendor,
        "name": credential.name,
        "base_url": credential.base_url,
        "hint": credential.hint,
        "default": credential.is_default,
    }
