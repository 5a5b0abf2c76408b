"""The Budgets page over HTTP, as a browser without JavaScript would use it, on both databases."""

from __future__ import annotations

import html
import re
from typing import Any

from sqlalchemy import select

from modelux_server.auth.principal import Principal
from modelux_server.member.invitations import invite
from modelux_server.models import Budget, Organization
from modelux_server.services import Services
from tests.budget.support import period_of, record_spend
from tests.dashboard.forms import browser, csrf_of, log_in, post_form, sign_up
from tests.support.invitations import join

NEW = {
    "name": "prod monthly",
    "applies_to": "organization",
    "amount_usd": "12.50",
    "period": "monthly",
    "action": "block",
    "thresholds": "50, 80, 100",
}


async def _org_id(rt: Services) -> str:
    async with rt.db.session() as session:
        return (
            await session.execute(select(Organization.id).where(Organization.name == "Acme"))
        ).scalar_one()


async def _budgets(rt: Services) -> list[Budget]:
    async with rt.db.session() as session:
        return list((await session.execute(select(Budget).order_by(Budget.id))).scalars())


def _article(page: str, budget_id: str) -> str:
    found = re.search(rf'<article class="card budget" data-budget="{budget_id}".*?</article>', page, re.S)
    assert found, f"no card for {budget_id}"
    return found.group(0)


async def test_an_owner_creates_edits_and_deletes_a_budget_and_sees_its_spend(app: Any, rt: Services) -> None:
    async with browser(app) as client:
        await sign_up(client)
        assert '<a href="/budgets"' in (await client.get("/settings/billing")).text  # in the navigation
        empty = await client.get("/budgets")
        assert empty.status_code == 200 and "No budgets yet." in empty.text
        assert empty.headers["cache-control"] == "no-store"

        created = await post_form(client, "/budgets", "/budgets/create", NEW)
        assert created.status_code == 303 and created.headers["location"] == "/budgets?done=create"
        (budget,) = await _budgets(rt)
        assert (budget.name, budget.scope, budget.cap_micros) == ("prod monthly", "organization", 12_500_000)
        assert (budget.period, budget.action, budget.thresholds) == ("monthly", "block", [50, 80, 100])

        await record_spend(rt, budget.id, await period_of(rt, budget.org_id, "monthly"), 10_000_000)
        page = (await client.get("/budgets?done=create")).text
        assert "Budget created." in page
        card = _article(page, budget.id)
        assert "$10.00 / $12.50" in card and "(80%)" in card
        assert '<meter class="bar" min="0" max="100" value="80.0"' in card
        assert "meter-warn" in card and "Near the cap" in card
        assert "Resets December 1, 2026 00:00 UTC" in card and "The whole organization" in card

        project = await post_form(client, "/projects", "/projects/create", {"name": "web"})
        assert project.status_code == 303
        project_id = re.findall(r'value="project:(proj_[A-Z0-9]+)"', (await client.get("/budgets")).text)[0]
        edited = await post_form(
            client,
            "/budgets",
            "/budgets/update",
            {
                **NEW,
                "id": budget.id,
                "applies_to": f"project:{project_id}",
                "amount_usd": "10",
                "action": "alert",
            },
        )
        assert edited.status_code == 303, edited.text
        (budget,) = await _budgets(rt)
        assert (budget.scope, budget.scope_id, budget.cap_micros, budget.action) == (
            "project",
            project_id,
            10_000_000,
            "alert",
        )
        card = _article((await client.get("/budgets")).text, budget.id)
        assert "meter-full" in card and "alert only, requests continue" in card and "Project web" in card

        deleted = await post_form(client, "/budgets", "/budgets/delete", {"id": budget.id})
        assert deleted.status_code == 303 and await _budgets(rt) == []


async def test_a_refused_form_shows_the_apis_message_and_keeps_what_was_typed(app: Any, rt: Services) -> None:
    async with browser(app) as client:
        await sign_up(client)
        refusals: list[tuple[dict[str, str], int, str]] = [
            ({"amount_usd": "12.1234567"}, 422, "at most 6 decimal places"),
            ({"amount_usd": "abc"}, 422, "must be a number of US dollars"),
            ({"amount_usd": "NaN"}, 422, "must be a finite number"),
            ({"amount_usd": "-3"}, 422, "must be greater than 0"),
            ({"thresholds": "80, 50"}, 422, "ascending order"),
            ({"thresholds": "fifty"}, 422, "whole percents separated by commas"),
            ({"applies_to": "project:proj_elsewhere"}, 404, "No project with id"),
        ]
        for change, status, message in refusals:
            r = await post_form(client, "/budgets", "/budgets/create", {**NEW, **change})
            assert r.status_code == status, (change, r.text[:300])
            assert message in html.unescape(r.text), change
            assert 'value="prod monthly"' in r.text  # the form keeps what was typed
        first = await post_form(client, "/budgets", "/budgets/create", {**NEW, "name": "<script>x</script>"})
        assert first.status_code == 303
        again = await post_form(client, "/budgets", "/budgets/create", {**NEW, "name": "<script>x</script>"})
        assert again.status_code == 409 and "already exists" in again.text
        assert "<script>x</script>" not in again.text and "&lt;script&gt;x&lt;/script&gt;" in again.text
    assert [b.name for b in await _budgets(rt)] == ["<script>x</script>"]


async def test_a_refused_edit_reopens_that_budgets_form(app: Any, rt: Services) -> None:
    async with browser(app) as client:
        await sign_up(client)
        await post_form(client, "/budgets", "/budgets/create", NEW)
        (budget,) = await _budgets(rt)
        r = await post_form(
            client, "/budgets", "/budgets/update", {**NEW, "id": budget.id, "thresholds": "0"}
        )
        assert r.status_code == 422
        card = _article(r.text, budget.id)
        assert "<details open>" in card and 'value="0"' in card
    assert (await _budgets(rt))[0].thresholds == [50, 80, 100]


async def test_a_member_sees_budgets_read_only(app: Any, rt: Services) -> None:
    async with browser(app) as owner:
        await sign_up(owner)
        await post_form(owner, "/budgets", "/budgets/create", NEW)
    org_id = await _org_id(rt)
    async with rt.db.session() as session:
        await invite(session, rt, Principal(org_id, "owner", "test"), email="dev@acme.test", role="member")
    await join(app, rt, "dev@acme.test")
    (budget,) = await _budgets(rt)
    async with browser(app) as member:
        assert (await log_in(member, "dev@acme.test")).status_code == 303
        page = (await member.get("/budgets")).text
        assert "prod monthly" in page and "<meter" in page
        assert (
            "/budgets/create" not in page and "/budgets/update" not in page and "/budgets/delete" not in page
        )
        token = csrf_of(page)
        for verb, data in (
            ("create", NEW),
            ("delete", {"id": budget.id}),
            ("update", {**NEW, "id": budget.id}),
        ):
            r = await member.post(f"/budgets/{verb}", data={**data, "csrf_token": token})
            assert r.status_code == 403 and "needs the admin role" in r.text, verb
    assert [b.id for b in await _budgets(rt)] == [budget.id]


async def test_forms_without_the_csrf_token_or_a_session_change_nothing(app: Any, rt: Services) -> None:
    async with browser(app) as stranger:
        r = await stranger.get("/budgets")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fbudgets"
        assert (await stranger.post("/budgets/create", data=NEW)).status_code == 303  # to /login
    async with browser(app) as client:
        await sign_up(client)
        assert (await client.post("/budgets/create", data=NEW)).status_code == 403
        r = await client.post("/budgets/create", data={**NEW, "csrf_token": "0" * 64})
        assert r.status_code == 403
    assert await _budgets(rt) == []


async def test_the_page_runs_no_inline_code_or_styles(app: Any) -> None:
    async with browser(app) as client:
        await sign_up(client)
        await post_form(client, "/budgets", "/budgets/create", NEW)
        r = await client.get("/budgets")
    policy = r.headers["content-security-policy"]
    assert "'unsafe-inline'" not in policy
    assert not re.search(r"<[^>]+\sstyle=", r.text) and not re.search(r"<[^>]+\son[a-z]+=", r.text)
    assert "<script>" not in r.text and '<meta name="viewport"' in r.text
