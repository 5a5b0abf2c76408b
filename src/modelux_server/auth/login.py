"""Dashboard login: password check with shared failed-attempt limits.

Two limits, both in the database (auth/limits.py) so several `modelux serve`
processes enforce them together:

* per (email, client address): 10 failures in 15 minutes lock that pair, so
  guessing one account's password is slow;
* per client address, whatever the emails: guessing many accounts from one
  address is slow too. A successful login does not reset it, or an attacker
  with one valid account could clear it between guesses.

A counted failure for an existing account is an audit event (`user.login_failed`)
in each of that account's organizations; an unknown email belongs to none, and
an attempt refused by a limit is not counted, so neither is recorded (nor can
an attacker grow an organization's log faster than the limits allow).

The client address is the connection's peer, which uvicorn rewrites from
X-Forwarded-For only for MODELUX_TRUSTED_PROXIES; an IPv6 address counts by
its /64 (limits.client_key).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.audit.record import Actor, record
from modelux_server.auth import limits, repository
from modelux_server.kit.secrets import hash_password, verify_password
from modelux_server.models import Membership, User
from modelux_server.organization.repository import user_by_email
from modelux_server.organization.service import canonical_email, refuse_nul
from modelux_server.services import Services

WINDOW = timedelta(minutes=15)
MAX_FAILURES = 10


@dataclass(frozen=True)
class Admitted:
    user: User
    membership: Membership


@dataclass(frozen=True)
class Rejected:
    reason: str  # "invalid" or "rate_limited"
    retry_after: int | None = None
    # for "rate_limited": "email" (this account from this address) or "address"
    per: str | None = None


LoginResult = Admitted | Rejected


@cache
def _dummy_hash() -> str:
    # verifying against a real hash when the email is unknown keeps the
    # answer time the same, so timing does not reveal which emails exist
    return hash_password("not-a-password")


def _counted(rt: Services, email: str, client: str) -> list[tuple[limits.Limit, str]]:
    """What a failed login counts against: (this email from this address, this address)."""
    address = limits.client_key(client)
    return [
        (limits.Limit("login", MAX_FAILURES, WINDOW), f"{email}|{address}"),
        (limits.Limit("login-address", rt.settings.login_max_failures_per_address, WINDOW), address),
    ]


async def check_password(
    session: AsyncSession, rt: Services, *, email: str, password: str, client: str
) -> User | Rejected:
    """The user whose password this is, or why not; a failure is recorded in the caller's transaction.

    Returns a value instead of raising so that the failure it records is
    committed by the caller rather than rolled back with an exception.
    """
    email = canonical_email(email)
    counted = _counted(rt, email, client)
    (per_email, email_subject), _ = counted
    now = rt.clock.now()
    exceeded = await limits.first_exceeded(session, counted, now)
    if exceeded is not None:
        limit, wait = exceeded
        return Rejected("rate_limited", wait, per="email" if limit is per_email else "address")
    user = await user_by_email(session, email)
    stored = user.password_hash if user is not None and user.password_hash else _dummy_hash()
    if not (verify_password(stored, password) and user is not None and user.password_hash):
        await limits.record(session, counted, now)
        if user is not None:
            await _record_failure(session, rt, user, email)
        return Rejected("invalid")
    await limits.clear(session, per_email, email_subject)
    return user


async def _record_failure(session: AsyncSession, rt: Services, user: User, email: str) -> None:
    actor = Actor("user", user.id, email, "dashboard")
    for org_id in await repository.organizations_of(session, user.id):
        await record(session, rt, org_id, actor, "user.login_failed", "user", user.id)


async def log_in(
    session: AsyncSession, rt: Services, *, email: str, password: str, client: str
) -> LoginResult:
    """Check a password and find the organization the login lands in (see check_password).

    Text with a NUL character is refused (422) before anything is counted.
    """
    refuse_nul(email, password)
    checked = await check_password(session, rt, email=email, password=password, client=client)
    if isinstance(checked, Rejected):
        return checked
    membership = await repository.first_membership(session, checked.id)
    if membership is None:
        # a right password for an account in no organization is still no login
        await limits.record(session, _counted(rt, canonical_email(email), client), rt.clock.now())
        return Rejected("invalid")
    return Admitted(checked, membership)
