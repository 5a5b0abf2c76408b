from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from modelux_server.kit.schemas import Body, iso
from modelux_server.models import ProviderCredential

Name = Annotated[str, Field(min_length=1, max_length=200)]
Secret = Annotated[str, Field(min_length=1, max_length=4000)]


def _check_url(value: str | None) -> str | None:
    if value is None:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("base_url must be an http(s) URL")
    return value.rstrip("/")


class ProviderCreate(Body):
    vendor: Annotated[str, Field(min_length=1, max_length=40)]
    name: Name
    api_key: Secret
    base_url: str | None = None

    _url = field_validator("base_url")(_check_url)


class ProviderUpdate(Body):
    name: Name | None = None
    api_key: Secret | None = None
    base_url: str | None = None

    _url = field_validator("base_url")(_check_url)


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
