"""From the `model` a caller sent to a route: which upstreams, in what strategy.

`@slug` names a routing config of the key's project, `vendor/model` a vendor's
model with the vendor's default credential, `@name/model` a model of the
credential called `name` (its vendor is the credential's; a slug has no `/`),
and a bare name is mapped to a vendor by its prefix. Plan features are checked
here, at request time, so a config kept after a downgrade answers the feature
402 until a re-upgrade.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from modelux_server.errors import ValidationFailed
from modelux_server.provider.vendors import MODEL_PREFIXES
from modelux_server.proxy.lookups import Caller, Lookups, OrgContext
from modelux_server.routing.expressions import Expression, parse
from modelux_server.routing.service import required_features

# bare model names go to the vendor whose prefix they start with (provider/vendors.py)
PREFIXES = MODEL_PREFIXES
MAX_DEPTH = 8
DEFAULT_RETRY_ON = frozenset({"429", "5xx", "timeout", "connection"})


@dataclass(frozen=True)
class Target:
    """One upstream a route may call: a vendor's model, and which credential to use.

    Made from a stored config's single model, fallback target or ensemble member
    (routing/strategies.py), or from the `model` the caller sent. Hashable: the
    credentials looked up for a route are keyed by it.
    """

    vendor: str
    model: str
    provider_id: str | None = None
    # `@name/model`: the credential's name; `resolve` fills vendor and provider_id from it
    credential_name: str | None = None
    timeout: float | None = None
    weight: float = 1.0

    @property
    def label(self) -> str:
        return f"{self.vendor}/{self.model}"


@dataclass(frozen=True)
class Route:
    strategy: str
    targets: list[Target]
    spec: dict[str, Any] = field(default_factory=dict)
    slug: str | None = None
    # which failures move a fallback on to its next target (routing/strategies.py)
    retry_on: frozenset[str] = DEFAULT_RETRY_ON


def split_model(name: str) -> tuple[str, str]:
    if "/" in name:
        vendor, model = name.split("/", 1)
        if vendor and model:
            return vendor, model
    for prefix, vendor in PREFIXES:
        if name.startswith(prefix):
            return vendor, name
    raise ValidationFailed(
        f"Cannot route model '{name}': use '@slug' (a routing config), 'vendor/model', "
        "'@credential-name/model', or a known model name "
        "(gpt-*, o1*, o3*, text-embedding-*, claude-*, gemini-*).",
        code="model_not_found",
        param="model",
    )


def split_named(name: str) -> tuple[str, str] | None:
    """`@credential-name/model` as (credential name, model); None for any other form."""
    if not name.startswith("@") or "/" not in name:
        return None
    credential, model = name[1:].split("/", 1)
    if not credential or not model:
        raise ValidationFailed(
            f"Cannot route model '{name}': '@credential-name/model' needs both parts.",
            code="model_not_found",
            param="model",
        )
    return credential, model


def _target(raw: dict[str, Any]) -> Target:
    text = str(raw["model"])
    named = split_named(text)
    credential_name: str | None = None
    if named is not None:
        # the vendor is the named credential's, known once it is looked up (`_bound`)
        credential_name, vendor, model = named[0], "", named[1]
    else:
        vendor, model = split_model(text)
    timeout_ms = raw.get("timeout_ms")
    return Target(
        vendor=vendor,
        model=model,
        provider_id=raw.get("provider_id"),
        credential_name=credential_name,
        timeout=timeout_ms / 1000 if timeout_ms else None,
        weight=float(raw.get("weight", 1.0)),
    )


async def resolve(lookups: Lookups, caller: Caller, org: OrgContext, model: str, depth: int = 0) -> Route:
    """The route for `model`, each `@name/model` target bound to its credential (422 before
    admission when no credential, or several, have that name)."""
    route = await _route(lookups, caller, org, model)
    if any(target.credential_name for target in route.targets):
        route = replace(route, targets=[await _bound(lookups, caller, target) for target in route.targets])
    return route


async def _bound(lookups: Lookups, caller: Caller, target: Target) -> Target:
    if target.credential_name is None:
        return target
    credential = await lookups.named_credential(caller.org_id, target.credential_name)
    return replace(target, vendor=credential.upstream.vendor, provider_id=credential.id)


async def _route(lookups: Lookups, caller: Caller, org: OrgContext, model: str) -> Route:
    if not model.startswith("@") or "/" in model:
        return Route(strategy="single", targets=[_target({"model": model})])
    slug = model[1:]
    version = await lookups.config(caller.project_id, slug)
    if version is None:
        raise ValidationFailed(
            f"No routing config '@{slug}' in this key's project.",
            code="routing_config_not_found",
            param="model",
        )
    for feature in required_features(version.strategy):
        org.entitlements.require(feature)
    spec = version.spec
    if version.strategy == "single":
        return Route("single", [_target(spec)], spec, slug)
    if version.strategy == "fallback":
        retry_on = frozenset(str(item) for item in spec.get("retry_on", DEFAULT_RETRY_ON))
        return Route("fallback", [_target(t) for t in spec["targets"]], spec, slug, retry_on)
    if version.strategy == "ensemble":
        return Route("ensemble", [_target(m) for m in spec["members"]], spec, slug)
    return Route("custom_rules", [], spec, slug)


async def resolve_rules(
    lookups: Lookups,
    caller: Caller,
    org: OrgContext,
    route: Route,
    facts: dict[str, Any],
    depth: int = 0,
) -> tuple[Route, str]:
    """Pick the first rule whose condition holds; returns the chosen route and why."""
    if depth >= MAX_DEPTH:
        raise ValidationFailed("routing rules nest too deeply", code="routing_loop")
    chosen, reason = route.spec["else"], "else"
    for index, rule in enumerate(route.spec["rules"]):
        if _compiled(rule["if"]).evaluate(facts):
            chosen, reason = rule["then"], f"rules[{index}]"
            break
    next_route = await resolve(lookups, caller, org, chosen)
    if next_route.strategy == "custom_rules":
        inner, inner_reason = await resolve_rules(lookups, caller, org, next_route, facts, depth + 1)
        return inner, f"{reason} -> @{next_route.slug} {inner_reason}"
    return next_route, f"{reason} -> {chosen}"


@lru_cache(maxsize=4096)
def _compiled(source: str) -> Expression:
    # rules were validated at save time; parsing once per source keeps the hot path cheap
    return parse(source)
