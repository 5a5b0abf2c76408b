"""Invitations: the only way a person joins an existing organization.

Adding a member creates an invitation and emails a one-time link to the
address. Nobody becomes a member, and no user row is created, until the
person who reads that mailbox opens the link and accepts:

* an address that already has an account is accepted only by that account,
  logged in; the organization never learns the account's id beforehand;
* an address without one gets an account with the password the person
  chooses there, created verified (opening the link proved the mailbox).

Only the SHA-256 of the link's token is stored; the token itself exists in
the email alone (its outbox row holds it sealed, see notifications/compose.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.auth import limits
from modelux_server.auth.principal import Principal
from modelux_server.errors import Conflict, Forbidden, RateLimited
from modelux_server.kit.clock import utc
from modelux_server.kit.ids import new_id
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import get_owned, list_owned
from modelux_server.kit.secrets import hash_password, new_token, token_hash
from modelux_server.models import Invitation, Membership, Organization, User
from modelux_server.notifications.messages import InvitationNotice
from modelux_server.notifications.service import enqueue
from modelux_server.organization import verification
from modelux_server.organization.service import normalize_email
from modelux_server.runtime import Runtime

TTL = timedelta(days=7)
HOUR = timedelta(hours=1)
PREFIX = "mlx_inv_"
ACCEPT_PATH = "/invitations/accept"


class Unusable(Exception):
    """A link that is unknown, expired, revoked or already used."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "unknown", "expired", "revoked", "accepted"


def status(invitation: Invitation, now: datetime) -> str:
    if invitation.accepted_at is not None:
        return "accepted"
    if invitation.revoked_at is not None:
        return "revoked"
    if utc(invitation.expires_at) <= now:
        return "expired"
    return "pending"


def _pending(now: datetime) -> list[ColumnElement[bool]]:
    return [Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None), Invitation.expires_at > now]


async def invite(
    session: AsyncSession, rt: Runtime, principal: Principal, *, email: str, role: str
) -> Invitation:
    """Create an invitation and queue its email in the caller's transaction.

    Each invitation mails an address the organization chooses, so an
    organization must be verified to send any (organization/verification.py)
    and sends at most MODELUX_INVITATIONS_MAX_PER_HOUR; only invitations
    actually created count.
    """
    if not principal.can_grant(role):
        raise Forbidden(f"A {principal.role} cannot add a member with the {role} role.")
    email = normalize_email(email)
    await verification.require_verified(session, rt, principal.org_id, doing="inviting members")
    now = rt.clock.now()
    per_org = limits.Limit("invitations-org", rt.settings.invitations_max_per_hour, HOUR)
    counted = [(per_org, principal.org_id)]
    exceeded = await limits.first_exceeded(session, counted, now)
    if exceeded is not None:
        _, wait = exceeded
        error = RateLimited(
            f"An organization may send {rt.settings.invitations_max_per_hour} invitations an hour. "
            f"Try again in {wait} seconds.",
            code="too_many_invitations",
        )
        error.headers["Retry-After"] = str(wait)
        raise error
    # says only what the caller can already list: this organization's members
    member = await session.execute(
        select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(Membership.org_id == principal.org_id, User.email == email)
    )
    if member.first() is not None:
        raise Conflict(f"{email} is already a member.", code="already_member")
    waiting = await session.execute(
        select(Invitation.id).where(
            Invitation.org_id == principal.org_id, Invitation.email == email, *_pending(now)
        )
    )
    if waiting.first() is not None:
        raise Conflict(
            f"{email} already has a pending invitation; revoke it to send a new one.", code="already_invited"
        )
    token = new_token(PREFIX)
    invitation = Invitation(
        id=new_id("inv"),
        org_id=principal.org_id,
        email=email,
        role=role,
        token_hash=token_hash(token),
        invited_by=principal.actor,
        expires_at=(now + TTL).replace(microsecond=0),
        created_at=now,
    )
    session.add(invitation)
    await session.flush()
    await limits.record(session, counted, now)
    org = await session.get(Organization, principal.org_id)
    inviter = await session.get(User, principal.actor) if principal.actor.startswith("usr_") else None
    notice = InvitationNotice(
        org_name=org.name if org is not None else principal.org_id,
        org_id=principal.org_id,
        role=role,
        invited_by=inviter.email if inviter is not None else None,
        link=f"{rt.public_url}{ACCEPT_PATH}?token={token}",
        expires_at=invitation.expires_at,
    )
    await enqueue(
        session,
        rt,
        org_id=principal.org_id,
        kind="invitation",
        dedupe_key=f"invitation:{invitation.id}",
        notice=notice,
        to=[email],
    )
    return invitation


async def list_pending(
    session: AsyncSession, rt: Runtime, org_id: str, page: PageRequest
) -> Page[Invitation]:
    return await list_owned(session, Invitation, org_id, page, *_pending(rt.clock.now()))


async def get(session: AsyncSession, org_id: str, invitation_id: str) -> Invitation:
    return await get_owned(session, Invitation, org_id, invitation_id, label="invitation")


async def revoke(session: AsyncSession, rt: Runtime, principal: Principal, invitation_id: str) -> Invitation:
    invitation = await get(session, principal.org_id, invitation_id)
    if not principal.can_grant(invitation.role):
        raise Forbidden(f"A {principal.role} cannot revoke an invitation for the {invitation.role} role.")
    if invitation.accepted_at is not None:
        raise Conflict(
            "This invitation was already accepted; remove the member instead.", code="invitation_accepted"
        )
    if invitation.revoked_at is None:
        invitation.revoked_at = rt.clock.now()
    return invitation


# ------------------------------------------------------------------ accepting


@dataclass(frozen=True)
class Offer:
    """What an acceptance link offers, as the acceptance page shows it."""

    invitation: Invitation
    org_name: str
    # the account at the invited address, when it can log in; None: one is created on acceptance
    account: User | None


async def offer(session: AsyncSession, rt: Runtime, token: str) -> Offer:
    """The invitation behind a link; Unusable when it cannot be accepted."""
    invitation = await _by_token(session, token)
    reason = status(invitation, rt.clock.now())
    if reason != "pending":
        raise Unusable(reason)
    org = await session.get(Organization, invitation.org_id)
    account = await _account(session, invitation.email)
    return Offer(invitation=invitation, org_name=org.name if org is not None else "", account=account)


async def accept_as(session: AsyncSession, rt: Runtime, token: str, user_id: str) -> Membership:
    """Accept for the logged-in account, which must be the invited address's."""
    invitation = await _by_token(session, token)
    user = await session.get(User, user_id)
    if user is None or user.email != invitation.email:
        raise Forbidden(
            f"This invitation is for {invitation.email}. Log in with that address to accept it.",
            code="invitation_for_another_account",
        )
    await _claim(session, rt, invitation)
    if user.email_verified_at is None:
        user.email_verified_at = rt.clock.now()
    return await _join(session, rt, invitation, user)


async def accept_with_new_account(
    session: AsyncSession, rt: Runtime, token: str, *, name: str | None, password: str
) -> tuple[User, Membership]:
    """Accept by creating the invited address's account (verified) with this password."""
    invitation = await _by_token(session, token)
    if await _account(session, invitation.email) is not None:
        raise Conflict(
            f"{invitation.email} already has an account. Log in to accept the invitation.",
            code="account_exists",
        )
    await _claim(session, rt, invitation)
    now = rt.clock.now()
    user = (await session.execute(select(User).where(User.email == invitation.email))).scalar_one_or_none()
    if user is None:
        user = User(id=new_id("usr"), email=invitation.email, created_at=now)
        session.add(user)
    else:
        # A row without a password is a person added to organizations before
        # invitations existed, who never agreed to those and could never log
        # in. The link proves this is the mailbox's owner, who agreed to this
        # organization only: the row starts over with no other membership.
        await session.execute(delete(Membership).where(Membership.user_id == user.id))
    user.name = name or user.name
    user.password_hash = hash_password(password)
    user.email_verified_at = user.email_verified_at or now
    await session.flush()
    return user, await _join(session, rt, invitation, user)


async def _by_token(session: AsyncSession, token: str) -> Invitation:
    if not token.startswith(PREFIX) or len(token) > 100:
        raise Unusable("unknown")
    found = await session.execute(select(Invitation).where(Invitation.token_hash == token_hash(token)))
    invitation = found.scalar_one_or_none()
    if invitation is None:
        raise Unusable("unknown")
    return invitation


async def _account(session: AsyncSession, email: str) -> User | None:
    user = (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()
    return user if user is not None and user.password_hash is not None else None


async def _claim(session: AsyncSession, rt: Runtime, invitation: Invitation) -> None:
    """Mark the invitation used, once: of two concurrent acceptances one wins."""
    now = rt.clock.now()
    result = await session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, *_pending(now))
        .values(accepted_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        await session.refresh(invitation)
        raise Unusable(status(invitation, now))
    invitation.accepted_at = now


async def _join(session: AsyncSession, rt: Runtime, invitation: Invitation, user: User) -> Membership:
    existing = (
        await session.execute(
            select(Membership).where(Membership.org_id == invitation.org_id, Membership.user_id == user.id)
        )
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    membership = Membership(
        id=new_id("mem"),
        org_id=invitation.org_id,
        user_id=user.id,
        role=invitation.role,
        created_at=rt.clock.now(),
    )
    session.add(membership)
    await session.flush()
    return membership
