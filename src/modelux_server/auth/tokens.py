"""The bearer tokens modelux hands out, each kind told apart by its prefix.

A prefix says what a token opens before any lookup: the proxy refuses a
management key without touching the database, logs and secret scanners can
recognise a leaked one, and the idempotency store refuses to keep any of them.
Only the SHA-256 of a token is stored (kit/secrets.py says why one hash is
enough); the list pages show its hint.
"""

from __future__ import annotations

from typing import NamedTuple

from modelux_server.kit.secrets import new_token, token_hash, token_hint

# every prefix below starts with this one
ANY = "mlx_"
API_KEY = "mlx_sk_"  # project key for the proxy
MANAGEMENT_KEY = "mlx_mk_"  # organization key for /manage/v1 and MCP
INVITATION = "mlx_inv_"  # the link emailed to an invited member
DASHBOARD_SESSION = "mlx_sess_"  # the dashboard's session cookie value


class Minted(NamedTuple):
    """A new token: `token` is shown once; `hash` and `hint` are what gets stored."""

    token: str
    hash: str
    hint: str


def mint(prefix: str) -> Minted:
    token = new_token(prefix)
    return Minted(token=token, hash=token_hash(token), hint=token_hint(token))
