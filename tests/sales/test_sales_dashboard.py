"""The "Talk to sales" form and manual billing on Settings -> Billing, over HTTP as a browser
without JavaScript would post them (both databases; test_manual_mode_browser.py drives Chromium)."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import select

from modelux_server.app import create_app
from modelux_server.auth.principal import Principal
from modelux_server.config import Settings
from modelux_server.kit.clock import FrozenClock
from modelux_server.kit.pagination import PageRequest
from modelux_server.member.invitations import invite
from modelux_server.models import Organization, SalesInquiry
from modelux_server.sales import service as sales
from modelux_server.services import Services
from tests.dashboard.forms import browser, csrf_of, log_in, sign_up
from tests.notifications.conftest import outbox
from tests.sales.conftest import SALES
from tests.support.invitations import join

FORM = "/settings/billing/sales-inquiry"
SALES_URL = "https://modelux.test/enterprise"
# controls that need a payment processor: Checkout, plan changes and the portal
PAYMENT_CONTROLS = re.compile(
    r'action="/settings/billing/(checkout|portal|change)"'
    r'|href="/settings/billing/change|Upgrade to|Downgrade to'
)


async def _inquiries(rt: Services) -> list[SalesInquiry]:
    async with rt.db.session() as session:
        return list((await sales.list_inquiries(session, PageRequest())).items)


async def _send(client: httpx.AsyncClient, data: dict[str, Any]) -> httpx.Response:
    token = csrf_of((await client.get("/settings/billing")).text)
    return await client.post(FORM, data={**data, "csrf_token": token})


@asynccontextmanager
async def _app_with(settings: Settings, clock: FrozenClock, **changes: Any) -> AsyncIterator[Any]:
    app = create_app(settings.model_copy(update=changes), clock=clock)
    async with app.router.lifespan_context(app):
        yield app


async def test_the_form_sends_an_inquiry_and_the_page_confirms_it(app: Any, rt: Services) -> None:
    async with browser(app) as client:
        await sign_up(client)
        sent = await _send(
            client,
            {
                "needs": ["sso", "residency"],
                "seats": "25",
                "monthly_requests": "",
                "message": "Hello sales,\r\nwe need EU residency.",
                "contact_email": "",
            },
        )
        assert sent.status_code == 303 and sent.headers["location"] == "/settings/billing?sales=sent#sales"
        page = (await client.get(sent.headers["location"])).text
    assert 'data-testid="sales-sent"' in page and "we received your message" in page

    (inquiry,) = await _inquiries(rt)
    assert inquiry.requested_by == "owner@acme.test" and inquiry.source == "dashboard"
    assert inquiry.needs == ["sso", "residency"] and inquiry.seats == 25 and inquiry.monthly_requests is None
    assert inquiry.message == "Hello sales,\nwe need EU residency." and inquiry.contact_email is None
    (email,) = await outbox(rt)
    assert email.kind == "sales_inquiry" and email.recipients == [SALES]
    assert email.payload["reply_to"] == ["owner@acme.test"]


async def test_a_member_may_send_it_too(app: Any, rt: Services) -> None:
    async with browser(app) as owner:
        await sign_up(owner)
    async with rt.db.session() as session:
        org_id = (await session.execute(select(Organization.id))).scalar_one()
        await invite(session, rt, Principal(org_id, "owner", "test"), email="dev@acme.test", role="member")
    await join(app, rt, "dev@acme.test")
    async with browser(app) as member:
        assert (await log_in(member, "dev@acme.test")).status_code == 303
        sent = await _send(member, {"message": "Can we get SSO?", "needs": "sso"})
    assert sent.status_code == 303
    assert [(i.requested_by, i.needs) for i in await _inquiries(rt)] == [("dev@acme.test", ["sso"])]


async def test_a_refused_form_says_why_beside_it_and_keeps_what_was_typed(app: Any, rt: Services) -> None:
    async with browser(app) as client:
        await sign_up(client)
        refused = await _send(
            client,
            {
                "needs": ["scim", "sla"],
                "seats": "lots",
                "message": "Keep <this> text",
                "contact_email": "x@y.test",
            },
        )
        blank = await _send(client, {"message": "   "})
    assert refused.status_code == 422
    problem = refused.text.split('id="sales-problem"', 1)[1].split("</div>", 1)[0]
    assert "seats: must be a whole number" in problem
    form = refused.text.split('id="sales"', 1)[1]
    assert (
        "Keep &lt;this&gt; text</textarea>" in form and 'value="lots"' in form and 'value="x@y.test"' in form
    )
    assert (
        'value="scim" checked' in form and 'value="sla" checked' in form and 'value="sso" checked' not in form
    )
    # a blank field counts as left out, as in the API
    assert (
        blank.status_code == 422 and "message: Field required" in blank.text.split('id="sales-problem"', 1)[1]
    )
    assert await _inquiries(rt) == [] and await outbox(rt) == []


async def test_without_the_forms_token_nothing_is_sent(app: Any, rt: Services) -> None:
    async with browser(app) as client:
        await sign_up(client)
        forged = await client.post(FORM, data={"message": "from another site"})
    assert forged.status_code == 403
    assert await _inquiries(rt) == []


async def test_in_manual_billing_the_page_shows_no_payment_controls_and_says_who_manages_plans(
    settings: Settings, clock: FrozenClock
) -> None:
    async with _app_with(settings, clock, sales_url=SALES_URL) as app, browser(app) as client:
        await sign_up(client)
        page = (await client.get("/settings/billing")).text
    assert app.state.services.settings.billing_mode == "manual"
    assert PAYMENT_CONTROLS.search(page) is None
    managed = page.split('data-testid="managed-by-admin">', 1)[1].split("</p>", 1)[0]
    assert "Plans are managed by your administrator." in managed
    assert '<a href="#sales">Talk to sales</a>' in managed and f'<a href="{SALES_URL}"' in managed
    # the plan table is there, and its Enterprise card leads to the form
    assert all(f'data-testid="plan-{p}"' in page for p in ("free", "pro", "team", "enterprise"))
    enterprise = page.split('data-testid="plan-enterprise"', 1)[1].split("</article>", 1)[0]
    assert '<a class="button" href="#sales">Contact sales</a>' in enterprise
    assert 'action="/settings/billing/sales-inquiry"' in page
    assert "sales@" not in page.replace(f"mailto:{SALES}", "")


async def test_with_only_a_sales_email_the_contact_link_writes_to_it(app: Any) -> None:
    async with browser(app) as client:
        await sign_up(client)
        page = (await client.get("/settings/billing")).text
    managed = page.split('data-testid="managed-by-admin">', 1)[1].split("</p>", 1)[0]
    assert f'<a href="mailto:{SALES}">Contact us</a>' in managed


async def test_payment_refusals_name_no_setting_and_no_command(
    app: Any, org: Any, client: httpx.AsyncClient
) -> None:
    answers = [
        await client.post("/manage/v1/billing/checkout", json={"plan": "pro"}, headers=org.headers),
        await client.post("/manage/v1/billing/portal", json={}, headers=org.headers),
        await client.post("/manage/v1/billing/change-plan", json={"plan": "team"}, headers=org.headers),
    ]
    async with browser(app) as page_client:
        await sign_up(page_client, org="Globex", email="owner@globex.test")
        confirm = await page_client.get("/settings/billing/change?plan=pro&interval=monthly")
    messages = [r.json()["error"]["message"] for r in answers]
    assert {r.status_code for r in answers} == {409}
    assert confirm.status_code == 409 and 'role="alert"' in confirm.text
    for text in [*messages, html.unescape(confirm.text)]:
        assert "managed by your administrator" in text
        assert "MODELUX_" not in text and "modelux admin" not in text and "set-plan" not in text
