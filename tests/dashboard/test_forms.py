"""The dashboard's forms without a browser: sessions, CSRF, rate limit, roles, plan refusals."""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from modelux_server.auth.principal import Principal
from modelux_server.billing.operator import create_enterprise_plan
from modelux_server.kit.clock import FrozenClock
from modelux_server.management_key.service import issue_management_key
from modelux_server.member.invitations import invite
from modelux_server.models import Organization, Project
from modelux_server.services import Services
from tests.dashboard.forms import PASSWORD, browser, csrf_of, log_in, post_form, sign_up
from tests.support.invitations import join
from tests.support.plans import move_to


async def _org_id(rt: Services, name: str = "Acme") -> str:
    async with rt.db.session() as session:
        return (await session.execute(select(Organization.id).where(Organization.name == name))).scalar_one()


async def test_signup_lands_on_free_with_its_meters_and_a_safe_session_cookie(app: Any) -> None:
    async with browser(app) as client:
        r = await sign_up(client)
        assert r.status_code == 303 and r.headers["location"] == "/settings/billing?notice=welcome"
        cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("mlx_session="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
        page = (await client.get(r.headers["location"])).text
    assert 'data-testid="current-plan">Free<' in page
    assert "no card needed" in page
    assert "0 / 10,000" in page  # monthly requests
    assert "0 / 1 " in page  # projects
    assert "Resets " in page
    assert "Acme" in page and ">owner<" in page  # navigation shows organization and role


async def test_root_and_pages_send_a_stranger_to_login(app: Any) -> None:
    async with browser(app) as client:
        assert (await client.get("/")).headers["location"] == "/login"
        r = await client.get("/api-keys")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fapi-keys"
        await sign_up(client)
        assert (await client.get("/")).headers["location"] == "/settings/billing"


async def test_unsafe_requests_without_the_csrf_token_are_refused(app: Any) -> None:
    async with browser(app) as client:
        # before login too: a forged login form is refused
        assert (await client.post("/login", data={"email": "a@b.test", "password": "x"})).status_code == 403
        await sign_up(client)
        r = await client.post("/projects/create", data={"name": "forged"})
        assert r.status_code == 403 and "did not come from this site" in r.text
        r = await client.post("/projects/create", data={"name": "forged", "csrf_token": "0" * 64})
        assert r.status_code == 403
        r = await client.post("/settings/billing/checkout", data={"plan": "pro", "interval": "monthly"})
        assert r.status_code == 403
        assert "forged" not in (await client.get("/projects")).text


async def test_login_is_rate_limited_per_email_and_address(app: Any, clock: FrozenClock) -> None:
    async with browser(app) as client:
        await sign_up(client, email="owner@acme.test")
        await client.post("/logout", data={"csrf_token": csrf_of((await client.get("/projects")).text)})
        for _ in range(10):
            assert (await log_in(client, "owner@acme.test", "wrong password")).status_code == 401
        blocked = await log_in(client, "owner@acme.test")  # even the right password
        assert blocked.status_code == 429
        assert "Too many failed attempts" in blocked.text
        assert 0 < int(blocked.headers["Retry-After"]) <= 900
        # another email from the same address is not affected
        assert (await log_in(client, "someone@else.test", "nope")).status_code == 401
        clock.advance(timedelta(minutes=16))
        ok = await log_in(client, "owner@acme.test")
        assert ok.status_code == 303 and ok.headers["location"] == "/settings/billing"


async def test_logout_ends_the_session_on_the_server(app: Any) -> None:
    async with browser(app) as client:
        await sign_up(client)
        stolen = client.cookies.get("mlx_session")
        token = csrf_of((await client.get("/projects")).text)
        assert (await client.post("/logout", data={"csrf_token": token})).headers["location"] == "/login"
    async with browser(app) as thief:
        thief.cookies.set("mlx_session", stolen or "", domain="modelux.test")
        assert (await thief.get("/projects")).status_code == 303


async def test_login_only_follows_same_site_next_paths(app: Any) -> None:
    async with browser(app) as client:
        await sign_up(client)
        await client.post("/logout", data={"csrf_token": csrf_of((await client.get("/projects")).text)})
        page = (await client.get("/login?next=//evil.test/x")).text
        assert 'name="next" value="/settings/billing"' in page
        token = csrf_of(page)
        r = await client.post(
            "/login",
            data={"email": "owner@acme.test", "password": PASSWORD, "next": "/api-keys", "csrf_token": token},
        )
        assert r.headers["location"] == "/api-keys"


async def test_a_member_sees_billing_read_only_and_cannot_create(app: Any, rt: Services) -> None:
    async with browser(app) as owner:
        await sign_up(owner)
    org_id = await _org_id(rt)
    async with rt.db.session() as session:
        await invite(session, rt, Principal(org_id, "owner", "test"), email="dev@acme.test", role="member")
    await join(app, rt, "dev@acme.test")
    async with browser(app) as member:
        assert (await log_in(member, "dev@acme.test")).status_code == 303
        billing = (await member.get("/settings/billing")).text
        assert ">member<" in billing
        assert "Plans are managed by your administrator." in billing  # manual billing: nobody here can
        assert "/settings/billing/checkout" not in billing and "Upgrade to Pro" not in billing
        projects = await member.get("/projects")
        assert "New project" not in projects.text
        r = await member.post("/projects/create", data={"name": "x", "csrf_token": csrf_of(projects.text)})
        assert r.status_code == 403 and "needs the admin role" in r.text
        keys = (await member.get("/management-keys")).text
        assert "Only owners and admins can see" in keys


async def test_a_creation_over_the_plan_limit_shows_the_402_and_the_upgrade_link(app: Any) -> None:
    async with browser(app) as client:
        await sign_up(client)
        first = await post_form(client, "/projects", "/projects/create", {"name": "one"})
        assert first.status_code == 303
        refused = await post_form(client, "/projects", "/projects/create", {"name": "two"})
    assert refused.status_code == 402
    assert "The Free plan allows 1 project" in refused.text
    assert 'href="https://modelux.test/settings/billing?plan=pro"' in refused.text
    assert 'value="two"' in refused.text  # what was typed is kept


async def test_a_form_is_refused_as_the_api_refuses_the_same_body(app: Any, rt: Services) -> None:
    too_long = "n" * 201
    async with browser(app) as client:
        await sign_up(client)
        async with rt.db.session() as session:
            _, token = await issue_management_key(
                session, rt, await _org_id(rt), name="t", role="owner", created_by=None
            )
        api = await client.post(
            "/manage/v1/projects", json={"name": too_long}, headers={"Authorization": f"Bearer {token}"}
        )
        form = await post_form(client, "/projects", "/projects/create", {"name": too_long})
    assert api.status_code == form.status_code == 422
    assert api.json()["error"]["message"] == "name: String should have at most 200 characters"
    assert html.escape(api.json()["error"]["message"]) in form.text
    async with rt.db.session() as session:
        assert (await session.execute(select(Project.id))).first() is None  # nothing was cut and saved


async def test_a_new_key_is_shown_once_then_only_its_hint(app: Any) -> None:
    async with browser(app) as client:
        await sign_up(client)
        await post_form(client, "/projects", "/projects/create", {"name": "web"})
        page = (await client.get("/api-keys")).text
        project_id = page.split('<option value="', 1)[1].split('"', 1)[0]
        created = await client.post(
            "/api-keys/create", data={"project_id": project_id, "name": "ci", "csrf_token": csrf_of(page)}
        )
        assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in created.headers["content-security-policy"]
        secret = created.text.split('id="new-secret" class="mono" type="text" value="', 1)[1].split('"', 1)[0]
        assert secret.startswith("mlx_sk_")
        again = (await client.get("/api-keys")).text
    assert secret not in again and secret[-4:] in again


async def test_the_upgrade_url_highlights_the_plan(app: Any) -> None:
    async with browser(app) as client:
        await sign_up(client)
        page = (await client.get("/settings/billing?plan=pro")).text
    pro = page.split('data-testid="plan-pro"', 1)[1].split("</article>", 1)[0]
    # manual billing (this app): the highlight, and no Checkout button that could only fail
    assert "Suggested for you" in pro and "Upgrade to Pro" not in pro
    assert "Suggested for you" not in page.split('data-testid="plan-pro"', 1)[0]


async def test_the_annual_toggle_shows_the_two_months_free_saving(app: Any) -> None:
    async with browser(app) as client:
        await sign_up(client)
        page = (await client.get("/settings/billing?interval=annual")).text
    pro = page.split('data-testid="plan-pro"', 1)[1].split("</article>", 1)[0]
    assert "$490" in pro and "/ year" in pro and "save $98 a year" in pro
    assert '<a href="?interval=annual#plans" aria-current="true">' in page


async def test_a_downgrade_confirmation_names_what_turns_off_and_configs_say_why(
    app: Any, rt: Services
) -> None:
    async with browser(app) as client:
        await sign_up(client)
        org_id = await _org_id(rt)
        await move_to(rt, org_id, "pro")
        await post_form(client, "/projects", "/projects/create", {"name": "web"})
        page = (await client.get("/routing-configs")).text
        project_id = page.split('<option value="', 1)[1].split('"', 1)[0]
        fields = '{"members": [{"model": "openai/gpt-4o"}, {"model": "anthropic/claude-3-5-haiku"}]}'
        r = await client.post(
            "/routing-configs/create",
            data={
                "project_id": project_id,
                "slug": "vote",
                "strategy": "ensemble",
                "fields": fields,
                "csrf_token": csrf_of(page),
            },
        )
        assert r.status_code == 303, r.text
        confirm = (await client.get("/settings/billing/change?plan=free&interval=monthly")).text
        assert "Downgrade to Free?" in confirm and "Takes effect immediately" in confirm
        assert "The unused part of the period you paid for is refunded to your card" in confirm
        effects = confirm.split('id="downgrade-effects"', 1)[1]
        assert "Ensembles" in effects and "@vote" in effects and "Nothing is deleted" in effects
        await move_to(rt, org_id, "free")
        configs = (await client.get("/routing-configs")).text
        row = configs.split('data-testid="rc-vote"', 1)[1].split("</tr>", 1)[0]
        assert "inactive" in row and "The Free plan does not include ensembles" in row
        billing = (await client.get("/settings/billing")).text
        assert "Switched off by your plan" in billing and "@vote" in billing


async def test_an_enterprise_organization_sees_its_agreement(app: Any, rt: Services) -> None:
    async with browser(app) as client:
        await sign_up(client)
        async with rt.db.session() as session:
            await create_enterprise_plan(
                session,
                rt,
                await _org_id(rt),
                name="Enterprise (Acme)",
                limits={"projects": 40},
                features=[],
                support_channel="#acme-modelux on Slack",
                sla="99.95% monthly uptime",
            )
        page = (await client.get("/settings/billing")).text
    assert 'data-testid="current-plan">Enterprise (Acme)<' in page
    assert "#acme-modelux on Slack" in page and "99.95% monthly uptime" in page
    assert "0 / 40" in page and "unlimited" in page
    assert "Contact sales" in page and "Upgrade to Pro" not in page


async def test_in_manual_billing_the_buttons_explain_that_payments_are_not_configured(app: Any) -> None:
    async with browser(app) as client:
        await sign_up(client)
        page = (await client.get("/settings/billing")).text
        assert "Managed by your administrator" in page
        r = await post_form(
            client, "/settings/billing", "/settings/billing/checkout", {"plan": "pro", "interval": "monthly"}
        )
    assert r.status_code == 409
    assert 'role="alert"' in r.text and "managed by your administrator" in r.text
    assert 'data-testid="current-plan">Free<' in r.text


async def test_an_invoice_link_that_is_not_a_web_address_is_never_rendered(app: Any, rt: Services) -> None:
    from modelux_server.models import EnterpriseInvoice

    async with browser(app) as client:
        await sign_up(client)
        org_id = await _org_id(rt)
        async with rt.db.session() as session:
            await create_enterprise_plan(session, rt, org_id, name="Enterprise", limits={}, features=[])
            now = rt.clock.now()
            for n, link in enumerate(("javascript:alert(document.cookie)", "https://pay.stripe.test/i/1")):
                session.add(
                    EnterpriseInvoice(
                        id=f"einv_{n}",
                        org_id=org_id,
                        source="stripe",
                        number=f"N-{n}",
                        status="open",
                        amount_cents=100,
                        currency="usd",
                        hosted_url=link,
                        created_at=now,
                        updated_at=now,
                    )
                )
        page = (await client.get("/settings/billing")).text
    assert "N-0" in page and "N-1" in page
    assert "javascript:" not in page
    assert 'href="https://pay.stripe.test/i/1"' in page
