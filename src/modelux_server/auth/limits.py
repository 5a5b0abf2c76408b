"""Attempt limits kept in the database: failed logins and signups.

Every `modelux serve` process reads and writes the same rows, so a limit
holds across processes without Redis. One table (`login_attempts`) serves
every limit: a row's key is the SHA-256 of the limit's scope and its subject
(an email with an address, an address, an email domain), so the scopes never
count one another's rows and the table holds no address or email in clear.

Checking and recording are separate statements, so a burst of parallel
requests can overshoot a limit by a few; that bounds abuse just as well and
needs no lock.

A client address is counted through `client_key`: an IPv6 client is usually
given a whole /64, so one counter covers the /64, not the single address it
can rotate at will.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.auth import repository
from modelux_server.kit.clock import utc

# rows are pruned on write once older than this, the longest window in use
KEEP = timedelta(hours=1)
_HOST_BITS_OF_A_64 = (1 << 64) - 1


def client_key(address: str) -> str:
    """The subject a limit counts for a client address: IPv4 as it is, IPv6 by its /64.

    An IPv4-mapped IPv6 address (what a dual-stack socket reports for an IPv4
    peer) counts as its IPv4 address. Anything that is not an address (a test
    client's name, "unknown") is its own subject.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    # through the integer, so a zone id ("fe80::1%eth0") does not split a /64
    network = ipaddress.IPv6Address(int(ip) & ~_HOST_BITS_OF_A_64)
    return f"{network}/64"


@dataclass(frozen=True)
class Limit:
    scope: str  # "login", "login-address", "signup-address", "signup-domain", "invitations-org"
    max: int
    window: timedelta

    def __post_init__(self) -> None:
        if self.window > KEEP:
            raise ValueError(f"a window longer than {KEEP} would lose rows to pruning")

    def key(self, subject: str) -> str:
        return hashlib.sha256(f"{self.scope}|{subject}".encode()).hexdigest()


async def retry_after(session: AsyncSession, limit: Limit, subject: str, now: datetime) -> int | None:
    """Seconds until `subject` is under `limit` again; None when it is under it now."""
    count, oldest = await repository.count_attempts(session, limit.key(subject), now - limit.window)
    if count < limit.max:
        return None
    wait = limit.window - (now - utc(oldest)) if oldest is not None else limit.window
    return max(1, math.ceil(wait.total_seconds()))


async def first_exceeded(
    session: AsyncSession, checks: list[tuple[Limit, str]], now: datetime
) -> tuple[Limit, int] | None:
    """The first (limit, retry-after seconds) that `checks` exceed, if any."""
    for limit, subject in checks:
        wait = await retry_after(session, limit, subject, now)
        if wait is not None:
            return limit, wait
    return None


async def record(session: AsyncSession, counted: list[tuple[Limit, str]], now: datetime) -> None:
    """Count one attempt against each (limit, subject), in the caller's transaction."""
    await repository.record_attempts(
        session, [limit.key(subject) for limit, subject in counted], now, now - KEEP
    )


async def clear(session: AsyncSession, limit: Limit, subject: str) -> None:
    await repository.clear_attempts(session, limit.key(subject))
