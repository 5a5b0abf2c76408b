"""Dashboard login: password check with a shared failed-attempt limit.

The limit counts failures per (email, client address) in the database, so
several `modelux serve` processes enforce one limit. Counting and recording
are two statements, so a burst of parallel guesses can overshoot the limit
by a few; that bounds guessing just as well and needs no lock.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.auth import repository
from modelux_server.kit.clock import utc
from modelux_server.kit.secrets import hash_password, verify_password
from modelux_server.models import Membership, User
from modelux_server.runtime import Runtime

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


LoginResult = Admitted | Rejected


@cache
def _dummy_hash() -> str:
    # verifying against a real hash when the email is unknown keeps the
    # answer time the same, so timing does not reveal which emails exist
    return hash_password("not-a-password")


def attempt_key(email: str, client: str) -> str:
    return hashlib.sha256(f"{email.strip().lower()}|{client}".encode()).hexdigest()


async def log_in(
    session: AsyncSession, rt: Runtime, *, email: str, password: str, client: str
) -> LoginResult:
    """Check a password; a failure is recorded in the caller's transaction.

    Returns a value instead of raising so that the failure it records is
    committed by the caller rather than rolled back with an exception.
    """
    email = email.strip().lower()
    key = attempt_key(email, client)
    now = rt.clock.now()
    failures, oldest = await repository.count_failures(session, key, now - WINDOW)
    if failures >= MAX_FAILURES:
        retry = WINDOW - (now - utc(oldest)) if oldest else WINDOW
        return Rejected("rate_limited", max(1, math.ceil(retry.total_seconds())))
    user = await repository.user_by_email(session, email)
    stored = user.password_hash if user is not None and user.password_hash else _dummy_hash()
    membership = None
    if verify_password(stored, password) and user is not None and user.password_hash:
        membership = await repository.first_membership(session, user.id)
    if user is None or membership is None:
        await repository.record_failure(session, key, now, prune_before=now - WINDOW)
        return Rejected("invalid")
    await repository.clear_failures(session, key)
    return Admitted(user, membership)
