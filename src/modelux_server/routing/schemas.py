from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field

from modelux_server.kit.schemas import Body, Clean, Update, iso
from modelux_server.models import RoutingConfig, RoutingConfigVersion
from modelux_server.routing.service import ConfigView
from modelux_server.routing.strategies import SPECS

# Version numbers are PostgreSQL integers; a larger one names no version.
MAX_VERSION = 2**31 - 1
Strategy = Annotated[str, Field(min_length=1, max_length=40, json_schema_extra={"enum": list(SPECS)})]


def _strategy_fields() -> str:
    """What the schema says of the fields beside `strategy` (checked by routing/strategies.py)."""
    each = "; ".join(
        f"{name}: " + ", ".join(field.alias or key for key, field in spec.model_fields.items())
        for name, spec in SPECS.items()
    )
    return f"Besides these, the fields of the chosen strategy ({each})."


class RoutingConfigCreate(Body):
    # the strategy's own fields sit beside these and are validated by the
    # strategy (routing/strategies.py), so unknown ones are still refused;
    # slugs keep their spaces so that a padded slug is refused, not fixed
    model_config = ConfigDict(
        extra="allow", str_strip_whitespace=False, json_schema_extra={"description": _strategy_fields()}
    )
    __pydantic_extra__: dict[str, Clean]
    project_id: Annotated[str, Field(min_length=1, max_length=40)]
    slug: Annotated[str, Field(min_length=1, max_length=63)]
    strategy: Strategy

    def strategy_fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class RoutingConfigUpdate(Update):
    model_config = ConfigDict(
        extra="allow", str_strip_whitespace=False, json_schema_extra={"description": _strategy_fields()}
    )
    __pydantic_extra__: dict[str, Clean]
    strategy: Strategy | None = None

    def strategy_fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Rollback(Body):
    version: Annotated[int, Field(ge=1, le=MAX_VERSION)]


def render(view: ConfigView) -> dict[str, Any]:
    c, v = view.config, view.version
    return {
        "id": c.id,
        "object": "routing_config",
        "project_id": c.project_id,
        "slug": c.slug,
        "strategy": v.strategy,
        **v.spec,
        "version": v.version,
        "active": view.active,
        "inactive_reason": view.inactive_reason,
        "created_at": iso(c.created_at),
        "updated_at": iso(v.created_at),
    }


def render_deleted(c: RoutingConfig) -> dict[str, Any]:
    return {"id": c.id, "object": "routing_config", "deleted": True}


def render_version(v: RoutingConfigVersion) -> dict[str, Any]:
    return {
        "object": "routing_config_version",
        "config_id": v.config_id,
        "version": v.version,
        "strategy": v.strategy,
        "spec": v.spec,
        "created_by": v.created_by,
        "created_at": iso(v.created_at),
    }
