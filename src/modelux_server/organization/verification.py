"""Email verification: the owner of a self-serve organization proves their address.

When verification is required (MODELUX_REQUIRE_EMAIL_VERIFICATION; by
default whenever SMTP is configured, so the link can actually arrive), an
organization cannot store provider credentials until one of its owners has a
verified email. Credentials are what make the gateway spend upstream money,
so a scripted signup with a made-up address gets nothing it can use. Nor
can it send invitations, which would make the server mail any address.

The rule is per organization, not per caller: a management key has no user
behind it, and an organization whose owner proved their address may let its
admins and keys add credentials. An invitation accepted through its emailed
link also verifies the address, so an invited owner verifies the organization.

The link's token is `user_id.expiry.signature`, an HMAC under the server's
secret key over the user, their current email and the expiry: nothing is
stored, and a link stops working when it expires or the email changes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.auth import limits
from modelux_server.errors import Forbidden, RateLimited
from modelux_server.models import Organization, User
from modelux_server.organization import repository
from modelux_server.services import Services

TTL = timedelta(days=3)
PATH = "/verify-email"
# new links a person may ask for in an hour; each one is an email we send
RESEND = limits.Limit("verify-email-resend", 5, limits.KEEP)
_TOKEN = re.compile(r"(usr_[0-9A-Z]{26})\.([0-9]{1,12})\.([0-9a-f]{64})")


class InvalidLink(Exception):
    """A confirmation link that is malformed, forged, expired or for an old email."""


def _key(rt: Services) -> bytes:
    return rt.keys.for_purpose("email-verification")


def _signature(rt: Services, user_id: str, email: str, expires: int) -> str:
    message = f"{user_id}|{email}|{expires}".encode()
    return hmac.new(_key(rt), message, hashlib.sha256).hexdigest()


def make_token(rt: Services, user: User, expires_at: datetime) -> str:
    expires = int(expires_at.timestamp())
    return f"{user.id}.{expires}.{_signature(rt, user.id, user.email, expires)}"


async def user_for_token(session: AsyncSession, rt: Services, token: str) -> User:
    """The user a valid link confirms; InvalidLink otherwise."""
    # checked for shape before any lookup: a link is pasted by hand at times,
    # and PostgreSQL refuses some strings (NUL) that SQLite would store
    found = _TOKEN.fullmatch(token)
    if found is None:
        raise InvalidLink()
    user_id, expires_text, signature = found.groups()
    user = await repository.user_by_id(session, user_id)
    if user is None:
        raise InvalidLink()
    expected = _signature(rt, user.id, user.email, int(expires_text))
    if not hmac.compare_digest(expected, signature):
        raise InvalidLink()
    if datetime.fromtimestamp(int(expires_text), UTC) <= rt.clock.now():
        raise InvalidLink()
    return user


async def confirm(session: AsyncSession, rt: Services, token: str) -> User:
    """Mark the link's user verified (a second click changes nothing)."""
    user = await user_for_token(session, rt, token)
    if user.email_verified_at is None:
        user.email_verified_at = rt.clock.now()
    return user


async def send_link(session: AsyncSession, rt: Services, user: User, org: Organization) -> None:
    """Queue the confirmation email in the caller's transaction."""
    from modelux_server.notifications.messages import VerifyEmailNotice
    from modelux_server.notifications.service import enqueue

    expires_at = (rt.clock.now() + TTL).replace(microsecond=0)
    notice = VerifyEmailNotice(
        org_name=org.name,
        org_id=org.id,
        link=f"{rt.public_url}{PATH}?token={make_token(rt, user, expires_at)}",
        expires_at=expires_at,
    )
    await enqueue(
        session,
        rt,
        org_id=org.id,
        kind="verify_email",
        dedupe_key=f"verify_email:{user.id}:{int(expires_at.timestamp())}",
        notice=notice,
        to=[user.email],
    )


async def resend_link(session: AsyncSession, rt: Services, user_id: str, org_id: str) -> bool:
    """Queue a new link for a logged-in user; False when there is nothing to confirm.

    RateLimited (429) past RESEND links an hour: each one mails the address.
    """
    user = await repository.user_by_id(session, user_id)
    org = await repository.organization_by_id(session, org_id)
    if user is None or org is None or user.email_verified_at is not None:
        return False
    now = rt.clock.now()
    if await limits.retry_after(session, RESEND, user.id, now) is not None:
        raise RateLimited("Several links were sent in the last hour. Use the newest one, or try later.")
    await limits.record(session, [(RESEND, user.id)], now)
    await send_link(session, rt, user, org)
    return True


async def user_is_verified(session: AsyncSession, user_id: str) -> bool:
    user = await repository.user_by_id(session, user_id)
    return user is not None and user.email_verified_at is not None


async def org_is_verified(session: AsyncSession, org_id: str) -> bool:
    """Whether one of the organization's owners has confirmed their address."""
    return await repository.has_verified_owner(session, org_id)


async def require_verified(
    session: AsyncSession, rt: Services, org_id: str, *, doing: str = "adding provider credentials"
) -> None:
    """Refuse (403 email_not_verified) while verification is required and missing."""
    if not rt.settings.email_verification_required:
        return
    if await org_is_verified(session, org_id):
        return
    raise Forbidden(
        f"Confirm the owner's email address before {doing}: open the link "
        f"we emailed, or ask for a new one at {rt.public_url}{PATH}.",
        code="email_not_verified",
    )
