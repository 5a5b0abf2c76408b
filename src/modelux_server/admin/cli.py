"""`modelux admin`: the operator's console on the command line.

The same services as `/admin/v1` (admin/endpoints.py), the same organization lookup (an
id, a name or an owner's email) and the same record of who did what: the operator is
`--operator NAME`, or the login name ($USER), acting `via` "cli". A refused operation is
one `error: ...` line and exit 1; a name or email matching several organizations is exit
2 with the candidate ids.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from modelux_server.admin import service
from modelux_server.admin import text as views
from modelux_server.admin.cli_common import AS_JSON, OPERATOR, ORG, admin, echo_json, operator, org_id
from modelux_server.admin.plan_flags import PlanFlags, plan_body, read_json
from modelux_server.kit.command import fail, settings_or_exit, with_services
from modelux_server.kit.pagination import MAX_LIMIT, PageRequest
from modelux_server.kit.schemas import parse
from modelux_server.services import Services

__all__ = ["admin"]  # the group, with every command of this module and cli_records.py

# ------------------------------------------------------------------ organizations


@admin.command("orgs")
def orgs(
    search: str = typer.Option(None, "--search", help="Text in the id, the name or an owner's email."),
    plan: str = typer.Option(None, "--plan", help="Only organizations on this catalog plan id."),
    status: str = typer.Option(None, "--status", help="active, suspended or past_due."),
    limit: int = typer.Option(50, "--limit", min=1, max=MAX_LIMIT, help="How many, in id order."),
    after: str = typer.Option(None, "--after", help="Start after this organization id (the next page)."),
    as_json: bool = AS_JSON,
) -> None:
    """List and search organizations: owner, plan, status and this month's requests."""

    async def work(rt: Services) -> Any:
        async with rt.db.session() as session:
            page = await service.list_orgs(
                session, rt, PageRequest(after, limit), search=search, plan=plan, status=status
            )
            return [service.render_row(r) for r in page.items], page.next_cursor

    rows, more = with_services(work)
    if as_json:
        echo_json({"data": rows, "next_cursor": more, "has_more": more is not None})
        return
    typer.echo(views.orgs_table(rows))
    if more:
        typer.echo(f"(more: --after {more})")


@admin.command("org")
def org(ref: str = ORG, as_json: bool = AS_JSON) -> None:
    """Show one organization: plan, usage, subscription, invoices, plan changes, the
    Enterprise plan and the operator actions on it."""

    async def work(rt: Services) -> dict[str, Any]:
        async with rt.db.session() as session:
            return await service.detail(session, rt, await org_id(session, ref))

    found = with_services(work)
    echo_json(found) if as_json else typer.echo(views.org_view(found))


@admin.command("set-plan")
def set_plan(
    ref: str = ORG,
    plan: str = typer.Argument(..., help="A self-serve catalog plan id (free, pro, team)."),
    interval: str = typer.Option("monthly", help="monthly or annual"),
    name: str = OPERATOR,
) -> None:
    """Move an organization to a self-serve plan now (an Enterprise plan it had ends)."""
    who = operator(name)

    async def work(rt: Services) -> Any:
        async with rt.db.session() as session:
            found = await org_id(session, ref)
            return found, await service.move_plan(session, rt, who, found, plan, interval)

    found, change = with_services(work)
    if change is None:
        typer.echo(f"{found} is already on {plan} ({interval}); nothing changed")
    else:
        typer.echo(f"{found}: {change.from_plan} -> {change.to_plan} ({change.to_interval})")


@admin.command("suspend")
def suspend(
    ref: str = ORG,
    reason: str = typer.Option(None, "--reason", help="Why (one line, kept with the organization)."),
    name: str = OPERATOR,
) -> None:
    """Stop the organization's proxy and API calls (403); nothing is deleted."""
    who = operator(name)

    async def work(rt: Services) -> str:
        async with rt.db.session() as session:
            found = await org_id(session, ref)
            await service.suspend(session, rt, who, found, reason)
            return found

    typer.echo(f"{with_services(work)} suspended")


@admin.command("unsuspend")
def unsuspend(ref: str = ORG, name: str = OPERATOR) -> None:
    """Let a suspended organization's calls through again, everything as it was."""
    who = operator(name)

    async def work(rt: Services) -> str:
        async with rt.db.session() as session:
            found = await org_id(session, ref)
            await service.unsuspend(session, rt, who, found)
            return found

    typer.echo(f"{with_services(work)} active")


# --------------------------------------------------------------- Enterprise plans

_CREATE_HELP = """Give an organization an Enterprise plan (replacing any it has) and move it
there now. Limits not given are unlimited; features default to the catalog's Enterprise
plan. Prints the plan version as JSON."""
_EDIT_HELP = """Save a new version of the organization's Enterprise plan with what the
options give changed; it applies at once. Prints the version and its changes as JSON."""


# one set of options, two commands (the decorator nearest the function registers first)
@admin.command("edit-enterprise-plan", help=_EDIT_HELP)
@admin.command("create-enterprise-plan", help=_CREATE_HELP)
def enterprise_plan(
    ctx: typer.Context,
    ref: str = ORG,
    name: str = typer.Option(None, "--name", help="The plan's name, shown to the customer."),
    limit: list[str] = typer.Option([], "--limit", help="NAME=N or NAME=unlimited; repeatable."),
    feature: list[str] = typer.Option([], "--feature", help="A feature (the whole set); repeatable."),
    add_feature: list[str] = typer.Option([], "--add-feature", help="Edit: add a feature; repeatable."),
    remove_feature: list[str] = typer.Option([], "--remove-feature", help="Edit: drop a feature."),
    region: str = typer.Option(None, "--region", help="Where its data stays, e.g. eu."),
    data_residency: str = typer.Option(None, "--data-residency", help="The same as --region."),
    price: str = typer.Option(None, "--price", help="The negotiated amount, e.g. 12000 or 12000.50."),
    currency: str = typer.Option(None, "--currency", help="ISO 4217, e.g. usd (default usd)."),
    price_interval: str = typer.Option(None, "--price-interval", help="monthly, quarterly or annual."),
    minimum_commitment: str = typer.Option(None, "--minimum-commitment", help="An amount."),
    contract_start: str = typer.Option(None, "--contract-start", help="YYYY-MM-DD (default today)."),
    contract_end: str = typer.Option(None, "--contract-end", help="YYYY-MM-DD: renewal or end."),
    auto_renew: bool = typer.Option(None, "--auto-renew/--no-auto-renew", help="Renew at the end."),
    notice_days: int = typer.Option(None, "--notice-days", help="Notice needed not to renew."),
    end_plan: str = typer.Option(None, "--end-plan", help="Self-serve plan after a contract that ends."),
    payment: str = typer.Option(None, "--payment", help="card or invoice."),
    net_days: int = typer.Option(None, "--net-days", help="Invoices due this many days after."),
    po_number: str = typer.Option(None, "--po-number", help="The customer's purchase order."),
    billing_contact_email: str = typer.Option(None, "--billing-contact-email", help="Invoices go here."),
    billing_contact_name: str = typer.Option(None, "--billing-contact-name"),
    support_channel: str = typer.Option(None, "--support-channel", help="e.g. '#acme on Slack'."),
    sla_uptime: str = typer.Option(None, "--sla-uptime", help="Uptime target in percent, e.g. 99.95."),
    sla_response: list[str] = typer.Option([], "--sla-response", help="sev1=30 (minutes); repeatable."),
    clear: list[str] = typer.Option([], "--clear", help="Edit: remove a part (price, contract, sla, ...)."),
    invoicing: str = typer.Option(None, "--invoicing", help="'net N': --payment invoice --net-days N."),
    sla: str = typer.Option(None, "--sla", help="'99.95% uptime': --sla-uptime 99.95."),
    from_json: str = typer.Option(None, "--from-json", help="The whole plan as the API's JSON ('-': stdin)."),
    who_name: str = OPERATOR,
) -> None:
    from modelux_server.enterprise import plans
    from modelux_server.enterprise.schemas import PlanInput, render_version

    editing = ctx.info_name == "edit-enterprise-plan"
    flags = PlanFlags(
        name=name,
        limits=limit,
        features=feature,
        add_features=add_feature,
        remove_features=remove_feature,
        region=region,
        data_residency=data_residency,
        price=price,
        currency=currency,
        price_interval=price_interval,
        minimum_commitment=minimum_commitment,
        contract_start=contract_start,
        contract_end=contract_end,
        auto_renew=auto_renew,
        notice_days=notice_days,
        end_plan=end_plan,
        payment=payment,
        net_days=net_days,
        po_number=po_number,
        billing_contact_email=billing_contact_email,
        billing_contact_name=billing_contact_name,
        support_channel=support_channel,
        sla_uptime=sla_uptime,
        sla_response=sla_response,
        clear=clear,
        invoicing=invoicing,
        sla=sla,
    )
    if from_json is not None and flags.given():
        fail("--from-json is the whole plan: give no other plan option with it", code=2)
    if editing and from_json is None and not flags.given():
        fail("nothing to change: give the options to change", code=2)
    who = operator(who_name)
    given_json = read_json(from_json, sys.stdin) if from_json is not None else None

    async def work(rt: Services) -> dict[str, Any]:
        async with rt.db.session() as session:
            found = await org_id(session, ref)
            state = await plans.locked_state(session, found)
            current = await plans.current_plan(session, state) if editing else None
            if editing and current is None:
                fail(f"{found} has no Enterprise plan to edit; create one first", code=1)
            today = rt.clock.now().date()
            body = given_json or plan_body(flags, render_version(current) if current else None, today)
            given = parse(PlanInput, body)
            if not editing:
                plan = await service.create_enterprise_plan(session, rt, who, found, given)
                return render_version(plan)
            plan, changes = await service.edit_enterprise_plan(session, rt, who, found, given)
            return {**render_version(plan), "changes": changes}

    echo_json(with_services(work))


@admin.command("enterprise-plan-history")
def enterprise_plan_history(ref: str = ORG, as_json: bool = AS_JSON) -> None:
    """Every version of the organization's Enterprise plan, newest first, with what each changed."""
    from modelux_server.enterprise import plans
    from modelux_server.enterprise.schemas import render_version

    async def work(rt: Services) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        async with rt.db.session() as session:
            found = await org_id(session, ref)
            return [(render_version(p), changes) for p, changes in await plans.history(session, found)]

    versions = with_services(work)
    if as_json:
        echo_json({"data": [{**plan, "changes": changes} for plan, changes in versions]})
    else:
        typer.echo(views.history_view(versions))


# ---------------------------------------------------------------- catalog, outbox


@admin.command("plans")
def plans() -> None:
    """Print the plan catalog in force (validates MODELUX_PLAN_CATALOG)."""
    from modelux_server.billing.schemas import render_plan
    from modelux_server.plans.catalog import CatalogError, load_catalog

    try:
        catalog = load_catalog(settings_or_exit().plan_catalog)
    except CatalogError as exc:
        fail(str(exc), code=2)
    echo_json([render_plan(p) for p in catalog.ordered()])


@admin.command("notifications")
def notifications(
    status: str = typer.Option(None, "--status", help="Only queued, sent or failed ones."),
    org: str = typer.Option(None, "--org", help="Only this organization (org_...)."),
    retry: str = typer.Option(None, "--retry", help="Requeue this failed notification (ntf_...)."),
    limit: int = typer.Option(50, "--limit", min=1, max=1000, help="How many, newest first."),
) -> None:
    """List the email outbox (what was sent, is queued or failed); --retry requeues a failed one."""
    from modelux_server.notifications import service as outbox
    from modelux_server.notifications.listing import format_table

    async def work(rt: Services) -> str:
        async with rt.db.session() as session:
            if retry:
                row = await outbox.requeue(session, rt, retry)
                return f"{row.id} requeued ({row.kind} to {', '.join(row.recipients)})"
            rows = await outbox.list_notifications(session, status=status, org_id=org, limit=limit)
            return format_table(rows)

    typer.echo(with_services(work))


@admin.command("stripe-sync")
def stripe_sync() -> None:
    """Create or update the Stripe products, prices and portal settings for the catalog."""
    from modelux_server.billing.stripe.catalog_push import sync_catalog, webhook_events
    from modelux_server.billing.stripe.gateway import StripeBilling

    async def work(rt: Services) -> list[str]:
        stripe = rt.billing
        if not isinstance(stripe, StripeBilling):
            fail("MODELUX_STRIPE_SECRET_KEY is not set (manual billing mode)", code=2)
        return await sync_catalog(rt, stripe)

    changes = with_services(work)
    for line in changes:
        typer.echo(line)
    in_sync = "Stripe is in sync with the catalog; nothing changed"
    typer.echo(f"{len(changes)} change(s)" if changes else in_sync)
    typer.echo("webhook events to subscribe: " + ", ".join(webhook_events()))


@admin.command("reconcile")
def reconcile() -> None:
    """Compare every Stripe-linked organization with Stripe and repair drift (missed webhooks)."""
    from modelux_server.billing.stripe.reconcile import reconcile as run_reconcile

    async def work(rt: Services) -> Any:
        return await run_reconcile(rt)

    repairs = with_services(work)
    for repair in repairs:
        typer.echo(str(repair))
    typer.echo(f"{len(repairs)} organization(s) repaired" if repairs else "no drift found")


# the record commands (invoices, sales inquiries, audit) join `admin` when imported
from modelux_server.admin import cli_records  # noqa: E402, F401
