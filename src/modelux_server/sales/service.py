"""Talk to sales: store an organization's inquiry and email it to the sales address.

Who may ask: every member of the organization, whatever the role. An inquiry
commits the organization to nothing and changes no state but its own row;
sales then talks with whoever the owners name. So a member, or a
member-role key an assistant uses, may ask as an owner may.

What happens (`create`), in the caller's transaction:

* the inquiry is stored, with who sent it (`requested_by`: the dashboard
  user's email, or the management key's id) and through which door;
* when `MODELUX_SALES_EMAIL` is set, one email to it is written to the
  outbox, its dedupe key the inquiry's id: a retried worker round, another
  process or an `Idempotency-Key` replay (which answers the stored body and
  never runs this again) cannot send it twice. When it is unset, the
  inquiry is only stored; the operator lists it (`list_inquiries`, the
  operator API) and the log says so once per inquiry.

An organization may send `MAX_PER_DAY` inquiries in a day (429 past that):
each is an email to people, and nothing else bounds a script.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from modelux_server.audit import record as audit
from modelux_server.auth.principal import Principal
from modelux_server.billing.service import org_plan
from modelux_server.errors import RateLimited
from modelux_server.kit.clock import utc
from modelux_server.kit.ids import new_id
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.repository import add
from modelux_server.models import SalesInquiry
from modelux_server.notifications import service as notifications
from modelux_server.notifications.sales_messages import SalesInquiryNotice
from modelux_server.organization import repository as organizations
from modelux_server.sales import repository
from modelux_server.sales.schemas import NEED_LABELS, SalesInquiryCreate
from modelux_server.services import Services

log = logging.getLogger("modelux.sales")

KIND = "sales_inquiry"
MAX_PER_DAY = 10
DAY = timedelta(days=1)


def dedupe_key(inquiry_id: str) -> str:
    return f"{KIND}:{inquiry_id}"


def sales_addresses(rt: Services) -> list[str]:
    """Where inquiries are emailed: `MODELUX_SALES_EMAIL`, one address or several comma-separated."""
    configured = rt.settings.sales_email or ""
    return [address.strip() for address in configured.split(",") if address.strip()]


async def _requested_by(session: AsyncSession, principal: Principal) -> str:
    # a dashboard user is named by the address sales can answer; a key by its id
    if principal.actor.startswith("usr_"):
        user = await organizations.user_by_id(session, principal.actor)
        if user is not None:
            return user.email
    return principal.actor


async def _check_pace(session: AsyncSession, rt: Services, org_id: str) -> None:
    now = rt.clock.now()
    count, oldest = await repository.sent_since(session, org_id, now - DAY)
    if count < MAX_PER_DAY:
        return
    wait = DAY - (now - utc(oldest)) if oldest is not None else DAY
    seconds = max(1, math.ceil(wait.total_seconds()))
    error = RateLimited(
        f"An organization may send {MAX_PER_DAY} sales inquiries a day. Try again in {seconds} seconds.",
        code="too_many_sales_inquiries",
    )
    error.headers["Retry-After"] = str(seconds)
    raise error


async def create(
    session: AsyncSession, rt: Services, principal: Principal, inquiry: SalesInquiryCreate
) -> SalesInquiry:
    """Store an inquiry from a checked `SalesInquiryCreate` and queue its email to sales."""
    principal.require("member")  # any role: see the module docstring
    await _check_pace(session, rt, principal.org_id)
    row = await add(
        session,
        SalesInquiry(
            id=new_id("inq"),
            org_id=principal.org_id,
            requested_by=await _requested_by(session, principal),
            contact_email=inquiry.contact_email,
            seats=inquiry.seats,
            monthly_requests=inquiry.monthly_requests,
            needs=list(inquiry.needs),
            message=inquiry.message,
            source=principal.source,
            created_at=rt.clock.now(),
        ),
    )
    await audit.record(
        session,
        rt,
        principal.org_id,
        audit.actor_of(principal),
        "sales_inquiry.sent",
        "sales_inquiry",
        row.id,
        after={"seats": row.seats, "monthly_requests": row.monthly_requests, "needs": row.needs},
    )
    await email_sales(session, rt, row)
    return row


async def email_sales(session: AsyncSession, rt: Services, row: SalesInquiry) -> bool:
    """Queue the email to sales for a stored inquiry; True if written now.

    At most once per inquiry, whoever calls it again (its dedupe key is the id).
    """
    to = sales_addresses(rt)
    if not to:
        log.warning(
            "sales inquiry %s from %s stored; MODELUX_SALES_EMAIL is not set, so no email was sent",
            row.id,
            row.org_id,
        )
        return False
    current = await org_plan(session, rt, row.org_id)
    # the contact given, else the dashboard user who sent it, else the organization's billing mail
    if row.contact_email:
        reply_to = [row.contact_email]
    elif "@" in row.requested_by:
        reply_to = [row.requested_by]
    else:
        reply_to = await notifications.recipients(session, current.state)
    notice = SalesInquiryNotice(
        org_name=await notifications.org_name(session, row.org_id),
        org_id=row.org_id,
        inquiry_id=row.id,
        plan_name=current.entitlements.plan.name,
        requested_by=row.requested_by,
        source=row.source,
        reply_to=reply_to,
        seats=row.seats,
        monthly_requests=row.monthly_requests,
        needs=[NEED_LABELS.get(need, need) for need in row.needs],
        message=row.message,
        received_at=row.created_at,
    )
    return await notifications.enqueue(
        session, rt, org_id=row.org_id, kind=KIND, dedupe_key=dedupe_key(row.id), notice=notice, to=to
    )


async def list_inquiries(
    session: AsyncSession, page: PageRequest, *, org_id: str | None = None
) -> Page[SalesInquiry]:
    """Every organization's inquiries (or one's, with `org_id`), newest first, a page at a time.

    For the operator: no principal, so no tenant check. The caller is the
    operator API (or CLI), which authenticates the operator itself.
    """
    return await repository.newest_first(session, page, org_id)
