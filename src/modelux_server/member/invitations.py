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

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.audit.record import Actor, actor_of, record
from modelux_server.auth import limits, tokens
from modelux_server.auth.login import Rejected, check_password
from modelux_server.auth.principal import Principal
from modelux_server.errors import Conflict, Forbidden, RateLimited, ValidationFailed
from modelux_server.kit.clock import utc
from modelux_server.kit.ids import new_id
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import add
from modelux_server.kit.secrets import hash_password, token_hash
from modelux_server.member import repository
from modelux_server.models import Invitation, Membership, User
from modelux_server.notifications.messages import InvitationNotice
from modelux_server.notifications.service import enqueue
from modelux_server.organization import repository as organizations
from modelux_server.organization import verification
from modelux_server.organization.service import check_new_password, normalize_email
from modelux_server.services import Services

TTL = timedelta(days=7)
HOUR = timedelta(hours=1)
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


@dataclass(frozen=True)
class InvitationView:
    """An invitation as its organization sees it (never whether the address has an account)."""

    id: str
    email: str
    role: str
    status: str  # "pending", "accepted", "revoked" or "expired"
    expires_at: datetime
    created_at: datetime

    @classmethod
    def of(cls, invitation: Invitation, now: datetime) -> InvitationView:
        return cls(
            id=invitation.id,
            email=invitation.email,
            role=invitation.role,
            status=status(invitation, now),
            expires_at=invitation.expires_at,
            created_at=invitation.created_at,
        )


# ------------------------------------------------------------------ the organization's side


async def invite(
    session: AsyncSession, rt: Services, principal: Principal, *, email: str, role: str
) -> InvitationView:
    """Create an invitation and queue its email in the caller's transaction.

    Each invitation mails an address the organization chooses, so an
    organization must be verified to send any (organization/verification.py)
    and sends at most MODELUX_INVITATIONS_MAX_PER_HOUR; only invitations
    actually created count.
    """
    principal.require("admin")
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
    user = await organizations.user_by_email(session, email)
    if user is not None and await repository.membership_of(session, principal.org_id, user.id) is not None:
        raise Conflict(f"{email} is already a member.", code="already_member")
    if await repository.has_pending_invitation(session, principal.org_id, email, now):
        raise Conflict(
            f"{email} already has a pending invitation; revoke it to send a new one.", code="already_invited"
        )
    minted = tokens.mint(tokens.INVITATION)
    invitation = await add(
        session,
        Invitation(
            id=new_id("inv"),
            org_id=principal.org_id,
            email=email,
            role=role,
            token_hash=minted.hash,
            invited_by=principal.actor,
            expires_at=(now + TTL).replace(microsecond=0),
            created_at=now,
        ),
    )
    await limits.record(session, counted, now)
    await record(
        session,
        rt,
        principal.org_id,
        actor_of(principal),
        "member.invited",
        "invitation",
        invitation.id,
        after={"email": email, "role": role, "expires_at": invitation.expires_at},
    )
    org = await organizations.organization_by_id(session, principal.org_id)
    inviter = (
        await organizations.user_by_id(session, principal.actor)
        if principal.actor.startswith("usr_")
        else None
    )
    notice = InvitationNotice(
        org_name=org.name if org is not None else principal.org_id,
        org_id=principal.org_id,
        role=role,
        invited_by=inviter.email if inviter is not None else None,
        link=f"{rt.public_url}{ACCEPT_PATH}?token={minted.token}",
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
    return InvitationView.of(invitation, now)


async def list_pending(
    session: AsyncSession, rt: Services, principal: Principal, page: PageRequest
) -> Page[InvitationView]:
    """Pending invitations: neither accepted, revoked nor expired."""
    principal.require("admin")
    now = rt.clock.now()
    found = await repository.list_pending_invitations(session, principal.org_id, page, now)
    return Page(items=[InvitationView.of(i, now) for i in found.items], next_cursor=found.next_cursor)


async def get(
    session: AsyncSession, rt: Services, principal: Principal, invitation_id: str
) -> InvitationView:
    principal.require("admin")
    invitation = await repository.get_invitation(session, principal.org_id, invitation_id)
    return InvitationView.of(invitation, rt.clock.now())


async def revoke(
    session: AsyncSession, rt: Services, principal: Principal, invitation_id: str
) -> InvitationView:
    """Revoke: the emailed link stops working (revoking twice changes nothing)."""
    principal.require("admin")
    invitation = await repository.get_invitation(session, principal.org_id, invitation_id)
    if not principal.can_grant(invitation.role):
        raise Forbidden(f"A {principal.role} cannot revoke an invitation for the {invitation.role} role.")
    if invitation.accepted_at is not None:
        raise Conflict(
            "This invitation was already accepted; remove the member instead.", code="invitation_accepted"
        )
    now = rt.clock.now()
    if invitation.revoked_at is None:
        invitation.revoked_at = now
        await record(
            session,
            rt,
            principal.org_id,
            actor_of(principal),
            "member.invitation_revoked",
            "invitation",
            invitation.id,
            before={"revoked_at": None},
            after={"revoked_at": now},
        )
    return InvitationView.of(invitation, now)


# ------------------------------------------------------------------ accepting


@dataclass(frozen=True)
class Offer:
    """What an acceptance link offers, as the acceptance page shows it."""

    invitation: Invitation
    org_name: str
    # the account at the invited address, when it can log in; None: one is created on acceptance
    account: User | None


async def offer(session: AsyncSession, rt: Services, token: str) -> Offer:
    """The invitation behind a link; Unusable when it cannot be accepted."""
    invitation = await _by_token(session, token)
    reason = status(invitation, rt.clock.now())
    if reason != "pending":
        raise Unusable(reason)
    org = await organizations.organization_by_id(session, invitation.org_id)
    account = await _account(session, invitation.email)
    return Offer(invitation=invitation, org_name=org.name if org is not None else "", account=account)


async def accept(
    session: AsyncSession,
    rt: Services,
    token: str,
    *,
    user_id: str | None,
    password: str,
    name: str,
    client: str,
) -> Membership | Rejected:
    """Accept through the link's form, in whichever state the person opened it.

    * logged in as `user_id`: for that account, which must be the invited address's;
    * logged out, when the address has an account: its password stands for
      logging in, under the login limits (a wrong one is Rejected, and counted);
    * otherwise the address's account is created with `password` and `name`.

    Unusable when the link cannot be accepted.
    """
    try:
        if user_id is not None:
            return await accept_as(session, rt, token, user_id)
        found = await offer(session, rt, token)
        if found.account is not None:
            checked = await check_password(
                session, rt, email=found.invitation.email, password=password, client=client
            )
            if isinstance(checked, Rejected):
                return checked
            return await accept_as(session, rt, token, checked.id)
        check_new_password(password)
        if len(name) > 200 or not name.isprintable():
            raise ValidationFailed("A name is at most 200 printable characters.", param="name")
        _, membership = await accept_with_new_account(
            session, rt, token, name=name or None, password=password
        )
        return membership
    except IntegrityError:
        # the same address accepted another invitation at the same instant
        raise Conflict(
            "This invitation was accepted at the same moment elsewhere. Reload the page.",
            code="accepted_concurrently",
        ) from None


async def accept_as(session: AsyncSession, rt: Services, token: str, user_id: str) -> Membership:
    """Accept for the logged-in account, which must be the invited address's."""
    invitation = await _by_token(session, token)
    user = await organizations.user_by_id(session, user_id)
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
    session: AsyncSession, rt: Services, token: str, *, name: str | None, password: str
) -> tuple[User, Membership]:
    """Accept by creating the invited address's account (verified) with this password."""
    invitation = await _by_token(session, token)
    user = await organizations.user_by_email(session, invitation.email)
    if user is not None and user.password_hash is not None:
        raise Conflict(
            f"{invitation.email} already has an account. Log in to accept the invitation.",
            code="account_exists",
        )
    await _claim(session, rt, invitation)
    now = rt.clock.now()
    if user is None:
        user = User(id=new_id("usr"), email=invitation.email, created_at=now)
        session.add(user)
    else:
        # A row without a password is a person added to organizations before
        # invitations existed, who never agreed to those and could never log
        # in. The link proves this is the mailbox's owner, who agreed to this
        # organization only: the row starts over with no other membership.
        await repository.delete_memberships_of(session, user.id)
    user.name = name or user.name
    user.password_hash = hash_password(password)
    user.email_verified_at = user.email_verified_at or now
    await session.flush()
    return user, await _join(session, rt, invitation, user)


async def _by_token(session: AsyncSession, token: str) -> Invitation:
    if not token.startswith(tokens.INVITATION) or len(token) > 100:
        raise Unusable("unknown")
    invitation = await repository.invitation_by_token_hash(session, token_hash(token))
    if invitation is None:
        raise Unusable("unknown")
    return invitation


async def _account(session: AsyncSession, email: str) -> User | None:
    user = await organizations.user_by_email(session, email)
    return user if user is not None and user.password_hash is not None else None


async def _claim(session: AsyncSession, rt: Services, invitation: Invitation) -> None:
    """Mark the invitation used, once: of two concurrent acceptances one wins."""
    now = rt.clock.now()
    if not await repository.claim_invitation(session, invitation.id, now):
        await session.refresh(invitation)
        raise Unusable(status(invitation, now))
    invitation.accepted_at = now


async def _join(session: AsyncSession, rt: Services, invitation: Invitation, user: User) -> Membership:
    existing = await repository.membership_of(session, invitation.org_id, user.id)
    if existing is not None:
        return existing
    membership = Membership(
        id=new_id("mem"),
        org_id=invitation.org_id,
        user_id=user.id,
        role=invitation.role,
        created_at=rt.clock.now(),
    )
    await add(session, membership)
    # the person joins through the link's page: the dashboard is the only door
    await record(
        session,
        rt,
        invitation.org_id,
        Actor("user", user.id, user.email, "dashboard"),
        "member.joined",
        "member",
        membership.id,
        after={"user_id": user.id, "email": user.email, "role": membership.role, "invitation": invitation.id},
    )
    return membership
