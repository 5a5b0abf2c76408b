"""Dashboard sessions: an opaque random token in a cookie, its hash in the table.

The token carries 256 bits, so a plain SHA-256 is a safe lookup key (as for
API keys). The role is read from the membership on every request, so a role
change or removal takes effect on the next page, not at the next login.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.audit import record as audit
from modelux_server.auth import repository, tokens
from modelux_server.auth.principal import Principal
from modelux_server.kit.ids import new_id
from modelux_server.kit.request_context import bind_caller
from modelux_server.kit.secrets import token_hash
from modelux_server.member.repository import membership_of
from modelux_server.models import DashboardSession
from modelux_server.organization import repository as organizations
from modelux_server.services import Services

TTL = timedelta(days=7)


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a dashboard page."""

    session_id: str
    token_hash: str
    user_id: str
    email: str
    org_id: str
    org_name: str
    role: str

    @property
    def principal(self) -> Principal:
        return Principal(org_id=self.org_id, role=self.role, actor=self.user_id, source="dashboard")

    @property
    def can_act(self) -> bool:
        """Owners and admins change things; members see pages read-only."""
        return self.role in ("owner", "admin")


async def open_session(session: AsyncSession, rt: Services, *, user_id: str, org_id: str) -> str:
    """Start a session and return its token (the cookie value, never stored).

    Every session opened is a `user.login` in its organization's audit log: a
    password login, the one that follows signing up, and the one that follows
    accepting an invitation.
    """
    minted = tokens.mint(tokens.DASHBOARD_SESSION)
    now = rt.clock.now()
    opened = DashboardSession(
        id=new_id("sess"),
        token_hash=minted.hash,
        user_id=user_id,
        org_id=org_id,
        expires_at=now + TTL,
        created_at=now,
    )
    session.add(opened)
    await session.flush()
    await audit.record(
        session,
        rt,
        org_id,
        _actor(user_id),
        "user.login",
        "session",
        opened.id,
        after={"expires_at": opened.expires_at},
    )
    return minted.token


async def resolve(session: AsyncSession, rt: Services, token: str | None) -> Viewer | None:
    """The viewer behind a cookie, or None when it is missing, expired, revoked or orphaned."""
    if not token or not token.startswith(tokens.DASHBOARD_SESSION):
        return None
    record = await repository.session_by_token_hash(session, token_hash(token))
    if record is None or record.revoked_at is not None or record.expires_at <= rt.clock.now():
        return None
    membership = await membership_of(session, record.org_id, record.user_id)
    user = await organizations.user_by_id(session, record.user_id)
    org = await organizations.organization_by_id(session, record.org_id)
    if membership is None or user is None or org is None:
        return None
    bind_caller(org.id)  # the request's log lines name the organization from here on
    return Viewer(
        session_id=record.id,
        token_hash=record.token_hash,
        user_id=user.id,
        email=user.email,
        org_id=org.id,
        org_name=org.name,
        role=membership.role,
    )


async def close_session(session: AsyncSession, rt: Services, token: str | None) -> None:
    if not token:
        return
    found = await repository.session_by_token_hash(session, token_hash(token))
    if found is not None and found.revoked_at is None:
        found.revoked_at = rt.clock.now()
        await audit.record(
            session,
            rt,
            found.org_id,
            _actor(found.user_id),
            "user.logout",
            "session",
            found.id,
            before={"revoked_at": None},
            after={"revoked_at": found.revoked_at},
        )


def _actor(user_id: str) -> audit.Actor:
    # sessions exist only in the dashboard
    return audit.Actor("user", user_id, None, "dashboard")
