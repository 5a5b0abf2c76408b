"""Self-serve signup: a Free organization for anyone, within limits.

Signups are counted per client address (an IPv6 /64 as one) and per email
domain (one hour, MODELUX_SIGNUP_MAX_PER_ADDRESS / MODELUX_SIGNUP_MAX_PER_DOMAIN),
in the database so every process shares the count. Only organizations actually
created are counted: a mistyped form costs nothing. Over a limit nothing is
created and the answer is 429.

Where verification is required, the new owner is sent a confirmation link
and the organization cannot add provider credentials until it is used.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.auth import limits
from modelux_server.errors import RateLimited
from modelux_server.organization import verification
from modelux_server.organization.service import (
    NewOrganization,
    check_new_password,
    create_organization,
    normalize_email,
    refuse_nul,
)
from modelux_server.services import Services

WINDOW = timedelta(hours=1)


def _limits(rt: Services) -> tuple[limits.Limit, limits.Limit]:
    return (
        limits.Limit("signup-address", rt.settings.signup_max_per_address, WINDOW),
        limits.Limit("signup-domain", rt.settings.signup_max_per_domain, WINDOW),
    )


async def sign_up(
    session: AsyncSession, rt: Services, *, org_name: str, email: str, password: str, client: str
) -> NewOrganization:
    """Create an organization and its owner from the signup form (no management key)."""
    check_new_password(password)
    refuse_nul(org_name, email, password)
    email = normalize_email(email)
    per_address, per_domain = _limits(rt)
    counted = [(per_address, limits.client_key(client)), (per_domain, email.rpartition("@")[2])]
    now = rt.clock.now()
    exceeded = await limits.first_exceeded(session, counted, now)
    if exceeded is not None:
        limit, wait = exceeded
        where = "from this network" if limit is per_address else "for this email domain"
        error = RateLimited(
            f"Too many new organizations {where} in the last hour. Try again in {_minutes(wait)}.",
            code="too_many_signups",
        )
        error.headers["Retry-After"] = str(wait)
        raise error
    created = await create_organization(
        session,
        rt,
        name=org_name,
        owner_email=email,
        owner_password=password,
        with_management_key=False,
        self_serve=True,
    )
    await limits.record(session, counted, now)
    if rt.settings.email_verification_required:
        await verification.send_link(session, rt, created.owner, created.org)
    return created


def _minutes(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"
