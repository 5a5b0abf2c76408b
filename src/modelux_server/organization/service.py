"""Organizations: creation with their owner, plan state and first key; the rules for
the addresses and passwords people sign up and accept invitations with."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.audit.record import Actor, operator, record
from modelux_server.errors import Conflict, ValidationFailed
from modelux_server.kit.ids import new_id
from modelux_server.kit.schemas import has_nul
from modelux_server.kit.secrets import hash_password
from modelux_server.management_key.service import issue_management_key
from modelux_server.models import Membership, Organization, PlanState, User
from modelux_server.organization import repository
from modelux_server.services import Services

MIN_PASSWORD = 10


@dataclass(frozen=True)
class NewOrganization:
    org: Organization
    owner: User
    management_key: str | None


# never in an address we mail: they would split or break the To: header
_NOT_IN_ADDRESS = frozenset(' ,;:<>()[]\\"')


def canonical_email(email: str) -> str:
    """The form an address is stored and looked up in (normalize_email also validates it)."""
    return email.strip().lower()


def _deliverable_domain(domain: str) -> bool:
    """Dot-separated labels of letters, digits and inner hyphens (any script, for
    internationalised names), at least two: what mail can be delivered to."""
    labels = domain.removesuffix(".").split(".")
    return len(labels) >= 2 and all(
        label and label[0] != "-" and label[-1] != "-" and all(c.isalnum() or c == "-" for c in label)
        for label in labels
    )


def normalize_email(email: str) -> str:
    email = canonical_email(email)
    local, _, domain = email.partition("@")
    if (
        not local
        or not _deliverable_domain(domain)
        or len(email) > 320
        or any(c in _NOT_IN_ADDRESS or not c.isprintable() for c in email)
    ):
        shown = email.encode("unicode_escape").decode()[:330]
        raise ValidationFailed(f"'{shown}' is not an email address", code="invalid_email", param="email")
    return email


def refuse_nul(*values: str) -> None:
    """Form text that no account can hold (and PostgreSQL cannot even look up)."""
    if has_nul(list(values)):
        raise ValidationFailed(
            "Emails, names and passwords cannot contain NUL characters.", code="invalid_characters"
        )


def check_new_password(password: str) -> None:
    """The rule for a password someone chooses (signing up, accepting an invitation)."""
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"Choose a password of at least {MIN_PASSWORD} characters.")


async def create_organization(
    session: AsyncSession,
    rt: Services,
    *,
    name: str,
    owner_email: str,
    owner_password: str | None = None,
    with_management_key: bool = True,
    owner_verified: bool = False,
    self_serve: bool = False,
) -> NewOrganization:
    """A new organization starts on the default (free) plan with no card.

    Its request window is anchored on the creation day until a subscription
    brings a billing-cycle anchor. `owner_verified` is for owners the operator
    vouches for (`modelux bootstrap`); self-serve owners verify by email
    (organization/verification.py).

    Its audit log starts with `organization.created`, made by the new owner
    when `self_serve` (the signup form), else by the operator at the command line.
    """
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationFailed("organization name must be 1-200 characters", param="name")
    email = normalize_email(owner_email)
    now = rt.clock.now()
    existing = await repository.user_by_email(session, email)
    if existing is not None and owner_password is not None:
        raise Conflict("An account with this email already exists.", code="email_taken")
    user = existing or User(
        id=new_id("usr"),
        email=email,
        name=None,
        password_hash=hash_password(owner_password) if owner_password else None,
        email_verified_at=now if owner_verified else None,
        created_at=now,
    )
    org = Organization(id=new_id("org"), name=name, created_at=now)
    session.add_all([org, user] if existing is None else [org])
    await session.flush()
    session.add(Membership(id=new_id("mem"), org_id=org.id, user_id=user.id, role="owner", created_at=now))
    session.add(
        PlanState(
            org_id=org.id,
            plan_id=rt.catalog.default_plan.id,
            interval="monthly",
            status="active",
            anchor_at=now,
            current_period_end=None,
            updated_at=now,
            revision=0,
        )
    )
    actor = Actor("user", user.id, None, "dashboard") if self_serve else operator("cli", "cli")
    await record(
        session,
        rt,
        org.id,
        actor,
        "organization.created",
        "organization",
        org.id,
        after={"name": org.name, "owner": user.email, "plan": rt.catalog.default_plan.id},
    )
    token = None
    if with_management_key:
        _, token = await issue_management_key(
            session, rt, org.id, name="bootstrap", role="owner", created_by=user.id, actor=actor
        )
    await session.flush()
    return NewOrganization(org=org, owner=user, management_key=token)
