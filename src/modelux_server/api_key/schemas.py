from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, Field
from pydantic_core import PydanticCustomError

from modelux_server.kit.schemas import WHOLE_NUMBER, Body, Update, iso
from modelux_server.models import ApiKey
from modelux_server.plans.catalog import MAX_PER_MINUTE

Name = Annotated[str, Field(min_length=1, max_length=200)]
# a JSON integer (not "60", 60.5 or true); null: the plan's limit, or the server's default
PerMinute = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_PER_MINUTE,
        description="Requests per minute for this key; null follows the plan's or the server's default.",
    ),
    WHOLE_NUMBER,
]


def _in_utc(value: datetime) -> datetime:
    # whole seconds, as the key is rendered; a far-future time with an offset can fall
    # outside what Python's datetime holds once moved to UTC: a 422, not a 500
    try:
        return value.astimezone(UTC).replace(microsecond=0)
    except OverflowError:
        raise PydanticCustomError("datetime_out_of_range", "is out of range") from None


# an ISO 8601 date-time with a zone ("2030-01-01T00:00:00Z"); a naive one is refused, since
# it would not say when the key stops working. That it is in the future is checked by the
# service, against the server's clock.
ExpiresAt = Annotated[
    AwareDatetime,
    AfterValidator(_in_utc),
    Field(description="When the key stops working (ISO 8601 with a zone, in the future); null: never."),
]


class ApiKeyCreate(Body):
    project_id: Annotated[str, Field(min_length=1, max_length=40)]
    name: Name = "default"
    rate_limit_per_minute: PerMinute | None = None
    expires_at: ExpiresAt | None = None


class ApiKeyUpdate(Update):
    nullable = frozenset({"rate_limit_per_minute", "expires_at"})

    name: Name | None = None
    rate_limit_per_minute: PerMinute | None = None
    expires_at: ExpiresAt | None = None


def render(k: ApiKey, token: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": k.id,
        "object": "api_key",
        "project_id": k.project_id,
        "name": k.name,
        "hint": k.hint,
        "rate_limit_per_minute": k.rate_limit_per_minute,
        "created_at": iso(k.created_at),
        "revoked_at": iso(k.revoked_at),
        "expires_at": iso(k.expires_at),
    }
    if token is not None:
        out["key"] = token  # shown once, never stored
    return out


def render_created(created: tuple[ApiKey, str]) -> dict[str, Any]:
    key, token = created
    return render(key, token)
