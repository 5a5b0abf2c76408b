"""POST /manage/v1/billing/sales-inquiry: stored, listed for the operator, emailed to sales once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from modelux_server.app import create_app
from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.models import SalesInquiry
from modelux_server.sales import service as sales
from modelux_server.sales.schemas import MAX_MESSAGE
from modelux_server.services import Services
from tests.budget.support import key_with_role
from tests.conftest import Org, make_org
from tests.notifications.conftest import Smtp, body, outbox, worker
from tests.sales.conftest import SALES

URL = "/manage/v1/billing/sales-inquiry"
ASK = {
    "message": "We would like SSO and an invoice.\r\nAbout 40 people.\tThanks!",
    "seats": 40,
    "monthly_requests": 2_000_000,
    "needs": ["sso", "invoicing", "residency"],
    "contact_email": " Jane.Doe@Acme.test ",
}


async def listed(
    rt: Services, *, org_id: str | None = None, cursor: str | None = None, limit: int = 50
) -> Page[SalesInquiry]:
    async with rt.db.session() as session:
        return await sales.list_inquiries(session, PageRequest(cursor=cursor, limit=limit), org_id=org_id)


async def test_an_inquiry_is_stored_listed_and_emailed_to_sales_exactly_once(
    client: httpx.AsyncClient, org: Org, rt: Services, smtp: Any
) -> None:
    server: Smtp = smtp()
    headers = {**org.headers, "Idempotency-Key": "ask-sales-1"}
    first = await client.post(URL, json=ASK, headers=headers)
    again = await client.post(URL, json=ASK, headers=headers)  # a client's retry

    assert first.status_code == 201, first.text
    inquiry = first.json()["data"]
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert inquiry == {
        "id": inquiry["id"],
        "object": "sales_inquiry",
        "org_id": org.id,
        "seats": 40,
        "monthly_requests": 2_000_000,
        "needs": ["sso", "invoicing", "residency"],
        "message": "We would like SSO and an invoice.\nAbout 40 people.\tThanks!",
        "contact_email": "jane.doe@acme.test",
        "requested_by": inquiry["requested_by"],
        "source": "api",
        "created_at": "2026-11-28T12:00:00Z",
    }
    assert inquiry["id"].startswith("inq_") and inquiry["requested_by"].startswith("mk_")
    assert [row.id for row in (await listed(rt)).items] == [inquiry["id"]]

    # the same inquiry queued again (a retried transaction, an operator's resend): no second email
    async with rt.db.session() as session:
        stored = await session.get(SalesInquiry, inquiry["id"])
        assert stored is not None
        assert await sales.email_sales(session, rt, stored) is False
    rows = [row for row in await outbox(rt, org.id) if row.kind == "sales_inquiry"]
    assert [(row.dedupe_key, row.recipients) for row in rows] == [(f"sales_inquiry:{inquiry['id']}", [SALES])]
    # two worker rounds (a restart, a second process): one email
    assert await worker(rt, server.url).run_once() == 1
    assert await worker(rt, server.url).run_once() == 0
    (mail,) = server.sink.accepted
    assert str(mail["To"]) == SALES and str(mail["Reply-To"]) == "jane.doe@acme.test"
    assert str(mail["Subject"]) == "[modelux] Sales inquiry from Acme"
    assert str(mail["X-Modelux-Notification"]) == "sales_inquiry"
    text = body(mail)
    assert "About 40 people.\tThanks!" in text
    assert "Seats:             40" in text and "Monthly requests:  2,000,000" in text
    assert "- Single sign-on (SSO)" in text and "- Invoicing instead of a card" in text
    assert f"Inquiry {inquiry['id']}" in text and "Current plan:      Free" in text
    assert "About 40 people." in body(mail, "html")


async def test_any_role_may_ask_and_the_key_is_named_as_the_sender(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    member = await key_with_role(rt, org.id, "member")
    r = await client.post(URL, json={"message": "Pricing for 5 teams?"}, headers=member)
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert data["requested_by"].startswith("mk_") and data["requested_by"] != ""
    assert data["needs"] == [] and data["seats"] is None and data["contact_email"] is None
    (row,) = [n for n in await outbox(rt, org.id) if n.kind == "sales_inquiry"]
    # no contact given and a key sent it: sales replies to the owners
    assert row.payload["reply_to"] == [org.owner_email]


REFUSED: list[tuple[dict[str, Any], str, str]] = [
    ({}, "message", "missing_field"),
    ({"message": ""}, "message", "invalid_field"),
    ({"message": " \n\t "}, "message", "invalid_field"),
    ({"message": "x" * (MAX_MESSAGE + 1)}, "message", "invalid_field"),
    ({"message": "ring \x07 the bell"}, "message", "invalid_characters"),
    ({"message": "escape \x1b[31m red"}, "message", "invalid_characters"),
    ({"message": "a\x00b"}, "message", "invalid_characters"),
    ({"message": "hi", "needs": ["sso", "cheaper"]}, "needs.1", "invalid_field"),
    ({"message": "hi", "needs": ["sso", "sso"]}, "needs", "invalid_field"),
    ({"message": "hi", "needs": "sso"}, "needs", "invalid_field"),
    ({"message": "hi", "seats": 0}, "seats", "invalid_field"),
    ({"message": "hi", "seats": 1_000_001}, "seats", "invalid_field"),
    ({"message": "hi", "seats": "5"}, "seats", "invalid_field"),
    ({"message": "hi", "seats": 2.5}, "seats", "invalid_field"),
    ({"message": "hi", "monthly_requests": -1}, "monthly_requests", "invalid_field"),
    ({"message": "hi", "monthly_requests": 10**12 + 1}, "monthly_requests", "invalid_field"),
    ({"message": "hi", "contact_email": "not an address"}, "contact_email", "invalid_field"),
    ({"message": "hi", "contact_email": "jane@localhost"}, "contact_email", "invalid_field"),
    ({"message": "hi", "contact_email": "a@b.test\r\nBcc: x@y.test"}, "contact_email", "invalid_field"),
    ({"message": "hi", "plan": "enterprise"}, "plan", "unknown_field"),
]


@pytest.mark.parametrize(("sent", "param", "code"), REFUSED)
async def test_bad_input_is_a_422_in_the_contract_shape_and_stores_nothing(
    client: httpx.AsyncClient, org: Org, rt: Services, sent: dict[str, Any], param: str, code: str
) -> None:
    r = await client.post(URL, json=sent, headers=org.headers)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert (error["param"], error["code"]) == (param, code)
    assert error["message"].startswith(f"{param}: ")
    assert (await listed(rt)).items == []
    assert await outbox(rt) == []


async def test_a_body_that_is_not_a_json_object_is_a_400_and_no_key_a_401(
    client: httpx.AsyncClient, org: Org
) -> None:
    not_json = await client.post(
        URL, content=b"{", headers={**org.headers, "Content-Type": "application/json"}
    )
    anonymous = await client.post(URL, json={"message": "hi"})
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "invalid_json"
    assert anonymous.status_code == 401 and anonymous.json()["error"]["type"] == "authentication_error"


async def test_without_a_sales_email_the_inquiry_is_stored_and_no_email_is_queued(
    settings: Settings, clock: FrozenClock
) -> None:
    app = create_app(settings.model_copy(update={"sales_email": None}), clock=clock)
    async with app.router.lifespan_context(app):
        rt: Services = app.state.services
        org = await make_org(rt)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://modelux.test") as client:
            r = await client.post(URL, json={"message": "Call me"}, headers=org.headers)
        assert r.status_code == 201, r.text
        assert [i.message for i in (await listed(rt)).items] == ["Call me"]
        assert await outbox(rt) == []


async def test_the_operator_list_is_newest_first_a_page_at_a_time(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    globex = await make_org(rt, "Globex", "owner@globex.test")
    sent = []
    for who, text in [(org, "one"), (globex, "two"), (org, "three")]:
        r = await client.post(URL, json={"message": text}, headers=who.headers)
        assert r.status_code == 201, r.text
        sent.append(r.json()["data"]["id"])

    first = await listed(rt, limit=2)
    rest = await listed(rt, limit=2, cursor=first.next_cursor)
    assert [i.message for i in first.items] == ["three", "two"] and first.has_more
    assert [i.message for i in rest.items] == ["one"] and not rest.has_more
    assert [i.id for i in (await listed(rt, org_id=org.id)).items] == [sent[2], sent[0]]


async def test_an_organization_may_ask_ten_times_a_day(
    client: httpx.AsyncClient, org: Org, rt: Services, clock: FrozenClock
) -> None:
    for n in range(sales.MAX_PER_DAY):
        assert (await client.post(URL, json={"message": f"#{n}"}, headers=org.headers)).status_code == 201
    refused = await client.post(URL, json={"message": "one more"}, headers=org.headers)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_sales_inquiries"
    assert refused.headers["Retry-After"] == str(24 * 3600)
    assert len((await listed(rt)).items) == sales.MAX_PER_DAY

    clock.advance(timedelta(days=1))
    assert (await client.post(URL, json={"message": "next day"}, headers=org.headers)).status_code == 201


async def test_an_inquiry_is_on_the_audit_record_without_its_message(
    client: httpx.AsyncClient, org: Org, rt: Services
) -> None:
    from sqlalchemy import select

    from modelux_server.models import AuditEvent

    r = await client.post(URL, json=ASK, headers=org.headers)
    assert r.status_code == 201, r.text
    async with rt.db.session() as session:
        events = list(
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.org_id == org.id, AuditEvent.action == "sales_inquiry.sent"
                )
            )
        )
    assert [(e.target_id, e.actor_type, e.source) for e in events] == [
        (r.json()["data"]["id"], "management_key", "api")
    ]
    assert events[0].changes["needs"] == {"from": None, "to": ["sso", "invoicing", "residency"]}
    assert "SSO and an invoice" not in str(events[0].changes)
