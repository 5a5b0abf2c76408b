from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictBool

from modelux_server.kit.schemas import Body, Update, iso
from modelux_server.models import ProviderCredential
from modelux_server.provider import vendors

# the vendors a credential may be for (provider/vendors.py); the service refuses
# others (422 unknown_vendor)
VENDORS: tuple[str, ...] = vendors.IDS

# provider_credentials.base_url is a String(500)
BASE_URL_MAX = 500
Name = Annotated[str, Field(min_length=1, max_length=200)]
Secret = Annotated[str, Field(min_length=1, max_length=4000)]
# checked by the service (provider/service.py: check_base_url), which every caller
# shares; the schema states its shape, not the egress policy the host must pass
BaseUrl = Annotated[
    str,
    Field(json_schema_extra={"format": "uri", "pattern": "^https?://[!-~]+$", "maxLength": BASE_URL_MAX}),
]

DEFAULT_HELP = (
    "Whether `vendor/model` and bare model names use this credential (one default per vendor: "
    "setting it unsets the others). Omitted on create: true for the vendor's first credential. "
    "Another credential is picked per request with `@credential-name/model`."
)
Default = Annotated[StrictBool, Field(description=DEFAULT_HELP)]


class ProviderCreate(Body):
    # `default` may be left out (the automatic choice) but not sent as null
    nullable = frozenset({"base_url"})

    # a plain string here so that the service's refusal (unknown_vendor, naming the
    # known ones) is the only one; the schema still lists the vendors
    vendor: Annotated[str, Field(min_length=1, max_length=40, json_schema_extra={"enum": list(VENDORS)})]
    name: Name
    api_key: Secret
    base_url: BaseUrl | None = None
    default: Default | None = None


class ProviderUpdate(Update):
    # null base_url goes back to the vendor's default endpoint
    nullable = frozenset({"base_url"})

    name: Name | None = None
    api_key: Secret | None = None
    base_url: BaseUrl | None = None
    default: Default | None = None


def render(c: ProviderCredential) -> dict[str, Any]:
    # the secret is never returned: only the masked hint
    return {
        "id": c.id,
        "object": "provider_credential",
        "vendor": c.vendor,
        "name": c.name,
        "base_url": c.base_url,
        "hint": c.hint,
        "default": c.is_default,
        "created_at": iso(c.created_at),
    }


def render_deleted(c: ProviderCredential) -> dict[str, Any]:
    return {**render(c), "deleted": True}
