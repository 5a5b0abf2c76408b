"""The access review: one document answering "who can do what here, right now, and since when".

Gated by the `access_review_export` feature (Enterprise; 402 `feature_not_in_plan`
otherwise) and by role: only admins and owners generate one. A review lists every
member's and key's reach, so it is an administrator's document, like the key lists it
gathers; a `member` role gets 403.

It holds:

* every member (active) and every pending invitation (invited): role, how they log in,
  whether SCIM manages them, their last dashboard login in this organization, when they
  joined or were invited, and by whom;
* every management key and every project API key, revoked ones included: role or
  project, creator, created at, expiry, last used (auth/last_used.py, to within a
  minute) and revocation;
* the SCIM tokens and the SSO configuration state.

Generating one is itself an audit event (`access_review.exported`), recorded in the
transaction that reads the state, so the record says what was handed out and when.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.audit import repository
from modelux_server.audit.record import actor_of, record
from modelux_server.audit.service import _csv_cell
from modelux_server.auth.principal import Principal
from modelux_server.billing.service import entitlements
from modelux_server.kit.schemas import iso
from modelux_server.services import Services

FEATURE = "access_review_export"
Format = Literal["json", "csv"]
# until SSO exists every member logs in with a password, or cannot log in yet
PASSWORD, NO_LOGIN = "password", "none"
SSO_NOT_CONFIGURED = "not_configured"


@dataclass(frozen=True)
class Who:
    """Who made something: a user, a management key, or what the audit log names."""

    type: str
    id: str | None
    label: str | None

    def render(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id, "label": self.label}


@dataclass(frozen=True)
class MemberEntry:
    id: str  # the membership's id, or the invitation's for someone invited
    user_id: str | None
    email: str
    name: str | None
    role: str
    status: str  # "active" or "invited"
    login_method: str | None  # "password" or "none"; None for an invitation
    scim_managed: bool
    last_login_at: datetime | None
    created_at: datetime  # joined, or invited
    invited_by: Who | None
    invitation_expires_at: datetime | None = None


@dataclass(frozen=True)
class KeyEntry:
    id: str
    kind: str  # "management_key" or "api_key"
    name: str
    hint: str
    role: str | None  # management keys
    project_id: str | None  # API keys
    project_name: str | None
    created_by: Who | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    status: str  # "active", "revoked" or "expired"


@dataclass(frozen=True)
class AccessReview:
    org_id: str
    org_name: str
    generated_at: datetime
    generated_by: Who
    members: list[MemberEntry]
    management_keys: list[KeyEntry]
    api_keys: list[KeyEntry]
    scim_tokens: list[KeyEntry] = field(default_factory=list)  # none until SCIM exists
    sso: str = SSO_NOT_CONFIGURED


async def generate(session: AsyncSession, rt: Services, principal: Principal, fmt: Format) -> AccessReview:
    """The organization's access as it stands in this transaction, and the event saying so."""
    ent = await entitlements(session, rt, principal.org_id)
    if not ent.has(FEATURE):
        raise ent.feature_error(FEATURE)
    principal.require("admin")
    review = await _read(session, rt, principal)
    await record(
        session,
        rt,
        principal.org_id,
        actor_of(principal),
        "access_review.exported",
        "access_review",
        None,
        changes={
            "format": fmt,
            "counts": {
                "members": sum(m.status == "active" for m in review.members),
                "invitations": sum(m.status == "invited" for m in review.members),
                "management_keys": len(review.management_keys),
                "project_keys": len(review.api_keys),
                # named so: a field with "token" in its name is redacted (audit/record.py)
                "scim": len(review.scim_tokens),
            },
        },
    )
    return review


async def _read(session: AsyncSession, rt: Services, principal: Principal) -> AccessReview:
    org_id, now = principal.org_id, rt.clock.now()
    org = await repository.organization(session, org_id)
    members = await repository.members(session, org_id)
    invited = await repository.pending_invitations(session, org_id, now)
    joined = await repository.accepted_invitations(session, org_id)
    logins = await repository.last_logins(session, org_id)
    mkeys = await repository.management_keys(session, org_id)
    pkeys = await repository.api_keys(session, org_id)
    # the table does not say who made a project key; its creation event does
    made = await repository.creators_on_record(session, org_id, "api_key.created", [k.id for k, _ in pkeys])
    by = {inv.invited_by for inv in [*joined.values(), *invited] if inv.invited_by}
    by |= {k.created_by for k in mkeys if k.created_by}
    names = await repository.labels(session, org_id, by | {principal.actor})

    def who(actor_id: str | None) -> Who | None:
        if not actor_id:
            return None
        return Who(_actor_type(actor_id), actor_id, names.get(actor_id))

    entries = [
        MemberEntry(
            id=m.id,
            user_id=u.id,
            email=u.email,
            name=u.name,
            role=m.role,
            status="active",
            login_method=PASSWORD if u.password_hash else NO_LOGIN,
            scim_managed=False,
            last_login_at=logins.get(u.id),
            created_at=m.created_at,
            invited_by=who(joined[u.email].invited_by) if u.email in joined else None,
        )
        for m, u in members
    ]
    entries += [
        MemberEntry(
            id=inv.id,
            user_id=None,
            email=inv.email,
            name=None,
            role=inv.role,
            status="invited",
            login_method=None,
            scim_managed=False,
            last_login_at=None,
            created_at=inv.created_at,
            invited_by=who(inv.invited_by),
            invitation_expires_at=inv.expires_at,
        )
        for inv in invited
    ]
    management = [
        KeyEntry(
            id=k.id,
            kind="management_key",
            name=k.name,
            hint=k.hint,
            role=k.role,
            project_id=None,
            project_name=None,
            created_by=who(k.created_by),
            created_at=k.created_at,
            expires_at=None,
            last_used_at=k.last_used_at,
            revoked_at=k.revoked_at,
            status=_status(k.revoked_at, None, now),
        )
        for k in mkeys
    ]
    project_keys = []
    for k, project in pkeys:
        event = made.get(k.id)
        project_keys.append(
            KeyEntry(
                id=k.id,
                kind="api_key",
                name=k.name,
                hint=k.hint,
                role=None,
                project_id=k.project_id,
                project_name=project.name if project is not None else None,
                created_by=Who(event.actor_type, event.actor_id, event.actor_label) if event else None,
                created_at=k.created_at,
                expires_at=k.expires_at,
                last_used_at=k.last_used_at,
                revoked_at=k.revoked_at,
                status=_status(k.revoked_at, k.expires_at, now),
            )
        )
    return AccessReview(
        org_id=org_id,
        org_name=org.name if org is not None else "",
        generated_at=now,
        generated_by=Who(_actor_type(principal.actor), principal.actor, names.get(principal.actor)),
        members=entries,
        management_keys=management,
        api_keys=project_keys,
    )


def _actor_type(actor_id: str) -> str:
    if actor_id.startswith("usr_"):
        return "user"
    if actor_id.startswith("mk_"):
        return "management_key"
    return "system"


def _status(revoked_at: datetime | None, expires_at: datetime | None, now: datetime) -> str:
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and expires_at <= now:
        return "expired"
    return "active"


# ------------------------------------------------------------------ rendering


def _who(value: Who | None) -> dict[str, Any] | None:
    return None if value is None else value.render()


def render_member(m: MemberEntry) -> dict[str, Any]:
    return {
        "id": m.id,
        "user_id": m.user_id,
        "email": m.email,
        "name": m.name,
        "role": m.role,
        "status": m.status,
        "login_method": m.login_method,
        "scim_managed": m.scim_managed,
        "last_login_at": iso(m.last_login_at),
        "created_at": iso(m.created_at),
        "invited_by": _who(m.invited_by),
        "invitation_expires_at": iso(m.invitation_expires_at),
    }


def render_key(k: KeyEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"id": k.id, "name": k.name, "hint": k.hint}
    if k.kind == "management_key":
        out["role"] = k.role
    else:
        out["project"] = {"id": k.project_id, "name": k.project_name}
    out.update(
        {
            "created_by": _who(k.created_by),
            "created_at": iso(k.created_at),
            "expires_at": iso(k.expires_at),
            "last_used_at": iso(k.last_used_at),
            "revoked_at": iso(k.revoked_at),
            "status": k.status,
        }
    )
    return out


def render(r: AccessReview) -> dict[str, Any]:
    return {
        "object": "access_review",
        "organization": {"id": r.org_id, "name": r.org_name},
        "generated_at": iso(r.generated_at),
        "generated_by": r.generated_by.render(),
        "members": [render_member(m) for m in r.members],
        "management_keys": [render_key(k) for k in r.management_keys],
        "api_keys": [render_key(k) for k in r.api_keys],
        "scim_tokens": [render_key(k) for k in r.scim_tokens],
        "sso": {"status": r.sso},
    }


CSV_COLUMNS = (
    "kind",
    "id",
    "name",
    "email",
    "role",
    "status",
    "login_method",
    "scim_managed",
    "project_id",
    "project_name",
    "created_at",
    "created_by_type",
    "created_by_id",
    "created_by",
    "expires_at",
    "last_login_at",
    "last_used_at",
    "revoked_at",
)


def _row(kind: str, **values: Any) -> list[Any]:
    who: Who | None = values.pop("who", None)
    if who is not None:
        values.update(created_by_type=who.type, created_by_id=who.id, created_by=who.label)
    values["kind"] = kind
    return [_csv_cell(_cell(values.get(column))) for column in CSV_COLUMNS]


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def csv_text(r: AccessReview) -> str:
    """The same document as one table: a row per member, invitation, key and the SSO state."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for m in r.members:
        writer.writerow(
            _row(
                "member" if m.status == "active" else "invitation",
                id=m.id,
                name=m.name,
                email=m.email,
                role=m.role,
                status=m.status,
                login_method=m.login_method,
                scim_managed=m.scim_managed,
                created_at=m.created_at,
                who=m.invited_by,
                expires_at=m.invitation_expires_at,
                last_login_at=m.last_login_at,
            )
        )
    for k in [*r.management_keys, *r.api_keys, *r.scim_tokens]:
        writer.writerow(
            _row(
                k.kind,
                id=k.id,
                name=k.name,
                role=k.role,
                status=k.status,
                project_id=k.project_id,
                project_name=k.project_name,
                created_at=k.created_at,
                who=k.created_by,
                expires_at=k.expires_at,
                last_used_at=k.last_used_at,
                revoked_at=k.revoked_at,
            )
        )
    writer.writerow(_row("sso", status=r.sso))
    return buffer.getvalue()
