"""The facts a custom routing rule's condition is evaluated against, for one request.

`resolve.resolve_rules` evaluates each rule's `if` expression (routing/expressions)
on the mapping built here: tags, end user, model, estimated prompt size, time,
plan and the organization's monthly usage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelux_server.kit.windows import window_at
from modelux_server.proxy.lookups import Caller, OrgContext
from modelux_server.services import Services


def _tags(headers: Mapping[str, str], body: dict[str, Any]) -> dict[str, str]:
    tags: dict[str, str] = {}
    raw = body.get("mlx:tags")
    if isinstance(raw, dict):
        tags.update({str(k): str(v) for k, v in raw.items()})
    elif isinstance(raw, list):
        tags.update({str(t): "true" for t in raw})
    header = headers.get("x-modelux-user-tags", "")
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if key:
            tags[key] = value if sep else "true"
    return tags


def _estimate_prompt_tokens(body: dict[str, Any]) -> int:
    # about four characters a token: cheap, deterministic, good enough for routing
    chars = 0
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(str(part.get("text", ""))) for part in content if isinstance(part, dict))
    return chars // 4


async def rule_facts(
    rt: Services, headers: Mapping[str, str], body: dict[str, Any], caller: Caller, org: OrgContext
) -> dict[str, Any]:
    now = rt.clock.now()
    limit = org.entitlements.limit("monthly_requests")
    used = await rt.counter.used(caller.org_id, window_at(org.anchor_day, now))
    return {
        "tags": _tags(headers, body),
        "end_user": body.get("user") or headers.get("x-modelux-user-id"),
        "model": body.get("model"),
        "prompt_tokens": _estimate_prompt_tokens(body),
        "hour": now.hour,
        "weekday": now.weekday(),
        "plan": org.plan_id,
        "usage": {
            "monthly_requests": {
                "used": used,
                "limit": limit,
                "pct": (100.0 * used / limit) if limit else 0.0,
            }
        },
    }
