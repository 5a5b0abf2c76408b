"""Routing strategies: their stored shape, validation, and the plan feature each needs.

A routing config is `{strategy, ...fields}`; the fields are validated by the
strategy's model here when the config is saved, so a config that is stored
can always be executed.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from modelux_server.errors import ValidationFailed
from modelux_server.kit.model_names import model_name_problem
from modelux_server.kit.schemas import nul_path

STRATEGY_FEATURE: dict[str, str | None] = {
    "single": None,
    "fallback": None,
    "ensemble": "ensembles",
    "custom_rules": "custom_routing_rules",
}
# used with fullmatch: `$` would also match before a trailing line break
SLUG_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# a target: `@slug` (a routing config), `vendor/model`, or `@credential-name/model`
TARGET_RE = re.compile(
    r"@[a-z0-9][a-z0-9_-]{0,62}|[A-Za-z0-9_.-]+/[A-Za-z0-9_.:@/-]+|@[^/\s@]{1,200}/[A-Za-z0-9_.:@/-]+"
)


def _model_name(value: str) -> str:
    problem = model_name_problem(value)
    if problem is not None:
        raise PydanticCustomError("invalid_model", problem)
    return value


ModelName = Annotated[str, AfterValidator(_model_name)]
# provider credential ids are ours (`prov_...`, a String(40) column)
ProviderId = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FallbackTarget(_Spec):
    """One entry of a fallback's `targets`, as stored (the proxy resolves it to a `proxy.resolve.Target`)."""

    model: ModelName
    provider_id: ProviderId | None = None
    timeout_ms: Annotated[int, Field(ge=100, le=600_000)] | None = None


class SingleSpec(_Spec):
    model: ModelName
    provider_id: ProviderId | None = None
    timeout_ms: Annotated[int, Field(ge=100, le=600_000)] | None = None


RETRY_CLASSES = ("429", "4xx", "5xx", "timeout", "connection")


def _retry_on_item(value: str) -> str:
    if value in RETRY_CLASSES or (len(value) == 3 and value.isdigit() and 400 <= int(value) <= 599):
        return value
    raise PydanticCustomError(
        "invalid_retry_on",
        "each entry is one of 429, 4xx, 5xx, timeout, connection or an HTTP status 400-599",
    )


RetryOn = Annotated[str, Field(max_length=10), AfterValidator(_retry_on_item)]


class FallbackSpec(_Spec):
    """`retry_on`: which failures move on to the next target. The default falls back on
    429, 5xx, timeouts (and an upstream 408) and broken connections; `4xx` adds every
    other client error, a single status (`"404"`) adds just that one. A failure not
    named goes back to the caller with the upstream's status (proxy/execute.py)."""

    targets: Annotated[list[FallbackTarget], Field(min_length=1, max_length=8)]
    retry_on: Annotated[list[RetryOn], Field(max_length=16)] = [
        "429",
        "5xx",
        "timeout",
        "connection",
    ]


class EnsembleMember(_Spec):
    model: ModelName
    provider_id: ProviderId | None = None
    weight: Annotated[float, Field(gt=0, le=1000)] = 1.0


class EnsembleSpec(_Spec):
    members: Annotated[list[EnsembleMember], Field(min_length=2, max_length=8)]
    aggregation: Literal["first_valid", "majority_vote", "weighted_vote"] = "first_valid"
    member_timeout_ms: Annotated[int, Field(ge=100, le=600_000)] = 30_000
    timeout_ms: Annotated[int, Field(ge=100, le=600_000)] = 60_000

    @model_validator(mode="after")
    def _overall_covers_member(self) -> EnsembleSpec:
        if self.timeout_ms < self.member_timeout_ms:
            raise ValueError("timeout_ms must be at least member_timeout_ms")
        return self


class Rule(_Spec):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    if_: Annotated[str, Field(alias="if", min_length=1, max_length=2000)]
    then: str

    @field_validator("then")
    @classmethod
    def _target(cls, value: str) -> str:
        return _check_target(value)


class CustomRulesSpec(_Spec):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    rules: Annotated[list[Rule], Field(min_length=1, max_length=50)]
    else_: str = Field(alias="else")

    @field_validator("else_")
    @classmethod
    def _target(cls, value: str) -> str:
        return _check_target(value)


def _check_target(value: str) -> str:
    if not TARGET_RE.fullmatch(value):
        raise ValueError(
            "a target is '@slug' (another routing config), 'vendor/model' or '@credential-name/model'"
        )
    return _model_name(value)


SPECS: dict[str, type[_Spec]] = {
    "single": SingleSpec,
    "fallback": FallbackSpec,
    "ensemble": EnsembleSpec,
    "custom_rules": CustomRulesSpec,
}


def validate_spec(strategy: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Validate the strategy's fields; return them normalised for storage."""
    model = SPECS.get(strategy)
    if model is None:
        raise ValidationFailed(
            f"unknown strategy '{strategy}' (known: {', '.join(SPECS)})",
            code="unknown_strategy",
            param="strategy",
        )
    # the API's bodies are refused earlier for this; the dashboard's JSON text is not
    tainted = nul_path(fields)
    if tainted is not None:
        raise ValidationFailed(
            f"{tainted}: must not contain NUL characters", code="invalid_characters", param=tainted
        )
    try:
        spec = model.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or strategy
        code = "invalid_model" if first["type"] == "invalid_model" else "invalid_routing_config"
        raise ValidationFailed(f"{where}: {first['msg']}", code=code, param=where) from None
    stored = spec.model_dump(by_alias=True, exclude_none=True)
    if strategy == "custom_rules":
        _parse_rule_expressions(stored)
    return stored


def _parse_rule_expressions(stored: dict[str, Any]) -> None:
    from modelux_server.routing.expressions import ExpressionError, parse

    for index, rule in enumerate(stored["rules"]):
        try:
            parse(rule["if"])
        except ExpressionError as exc:
            raise ValidationFailed(
                f"rules[{index}].if: {exc}",
                code="invalid_rule_expression",
                param=f"rules[{index}].if",
                position=exc.position,
            ) from None


def targets_of(strategy: str, spec: dict[str, Any]) -> list[str]:
    """The other configs (`@slug`) a config routes to."""
    if strategy != "custom_rules":
        return []
    found = [rule["then"] for rule in spec["rules"]] + [spec["else"]]
    return [t[1:] for t in found if t.startswith("@")]
