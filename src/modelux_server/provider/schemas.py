from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from modelux_server.kit.schemas import Body, Update, iso
from modelux_server.models import ProviderCredential

# the vendors a credential may be for; the service refuses others (422 unknown_vendor)
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

Name = Annotated[str, Field(min_length=1, max_length=200)]
Secret = Annotated[str, Field(min_length=1, max_length=4000)]


class ProviderCreate(Body):
    vendor: Annotated[str, Field(min_length=1, max_length=40)]
    name: Name
    api_key: Secret
    # checked by the service (provider/service.py: check_base_url), which every caller shares
    base_url: str | None = None


class ProviderUpdate(Update):
    # null base_url goes back to the vendor's default endpoint
    nullable = frozenset({"base_url"})

    name: Name | None = None
    api_key: Secret | None = None
    base_url: str | None = None


def render(c: ProviderCredential) -> dict[str, Any]:
    # the secret is never returned: only the masked hint
    return {
        "id": c.id,
        "object": "provider_credential",
        "vendor": c.vendor,
        "name": c.name,
        "base_url": c.base_url,
        "hint": c.hint,
        "created_at": iso(c.created_at),
    }


def render_deleted(c: ProviderCredential) -> dict[str, Any]:
    return {**render(c), "deleted": True}
