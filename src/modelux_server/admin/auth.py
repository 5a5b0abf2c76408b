"""Operator tokens: `MODELUX_ADMIN_TOKEN` holds `name:secret` entries (a bare secret is the
operator "operator"). Unset, the operator API does not exist (404)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from modelux_server.auth.management import bearer_token
from modelux_server.config import Settings
from modelux_server.errors import NotFound, Unauthorized


@dataclass(frozen=True)
class Operator:
    name: str
    via: str  # api | cli | system

    @property
    def actor(self) -> str:
        return f"operator:{self.name}"


def operators(settings: Settings) -> list[tuple[str, bytes]]:
    """(name, secret) per configured operator."""
    found: list[tuple[str, bytes]] = []
    for entry in (settings.admin_token or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, _, secret = entry.rpartition(":")
        found.append((name.strip() or "operator", secret.encode()))
    return found


def not_found() -> NotFound:
    return NotFound("Not found.", code="not_found")


def authenticate_operator(settings: Settings, authorization: str | None) -> Operator:
    """The operator a bearer token names. Every configured secret is compared, in constant
    time, so the answer's timing says nothing about which (or how much) matched."""
    known = operators(settings)
    if not known:
        raise not_found()
    token = (bearer_token(authorization) or "").encode()
    matched: str | None = None
    for name, secret in known:
        if hmac.compare_digest(token, secret) and matched is None:
            matched = name
    if matched is None:
        raise Unauthorized("Invalid or missing operator token.", code="invalid_operator_token")
    return Operator(matched, "api")
