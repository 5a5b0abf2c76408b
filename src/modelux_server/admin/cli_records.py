"""`modelux admin` commands over records: Enterprise invoices, sales inquiries, audit chains."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from modelux_server.admin import text as views
from modelux_server.admin.cli_common import AS_JSON, OPERATOR, ORG, admin, echo_json, operator, org_id
from modelux_server.kit.command import fail, with_services
from modelux_server.kit.pagination import MAX_LIMIT, PageRequest
from modelux_server.kit.schemas import parse
from modelux_server.services import Services

# ----------------------------------------------------------------------- invoices


class _ListUnlessNamed(TyperGroup):
    """`invoices ORG` lists; `invoices record ...` and `invoices mark ...` are subcommands."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["list", *args]
        return super().parse_args(ctx, args)


invoices_group = typer.Typer(
    cls=_ListUnlessNamed,
    no_args_is_help=True,
    help="An organization's Enterprise invoices: `invoices ORG` lists them; `record` and "
    "`mark` keep them by hand in manual billing mode.",
)
admin.add_typer(invoices_group, name="invoices")


@invoices_group.command("list")
def invoices_list(ref: str = ORG, as_json: bool = AS_JSON) -> None:
    """The organization's invoices, newest first, with their status and link."""
    from modelux_server.enterprise import invoices

    async def work(rt: Services) -> list[dict[str, Any]]:
        async with rt.db.session() as session:
            found = await org_id(session, ref)
            now = rt.clock.now()
            return [invoices.render(i, now) for i in await invoices.for_org(session, found)]

    rows = with_services(work)
    echo_json({"data": rows}) if as_json else typer.echo(views.invoices_table(rows))


@invoices_group.command("record")
def invoices_record(
    ref: str = ORG,
    amount: str = typer.Option(..., "--amount", help="e.g. 12000 or 12000.50"),
    currency: str = typer.Option("usd", "--currency"),
    number: str = typer.Option(None, "--number", help="The invoice's number as sent."),
    due: str = typer.Option(None, "--due", help="YYYY-MM-DD"),
    po_number: str = typer.Option(None, "--po-number"),
    status: str = typer.Option("open", "--status", help="open, paid, void or uncollectible."),
    period_start: str = typer.Option(None, "--period-start", help="YYYY-MM-DD"),
    period_end: str = typer.Option(None, "--period-end", help="YYYY-MM-DD"),
    name: str = OPERATOR,
) -> None:
    """Manual billing mode: note an invoice sent outside any payment processor."""
    from modelux_server.enterprise import invoices

    who = operator(name)
    given = {
        "amount": amount,
        "currency": currency,
        "number": number,
        "due": due,
        "po_number": po_number,
        "status": status,
        "period_start": period_start,
        "period_end": period_end,
    }

    async def work(rt: Services) -> dict[str, Any]:
        async with rt.db.session() as session:
            found = await org_id(session, ref)
            body = parse(invoices.InvoiceRecord, {k: v for k, v in given.items() if v is not None})
            invoice = await invoices.record_manual(session, rt, who, found, body)
            return invoices.render(invoice, rt.clock.now())

    echo_json(with_services(work))


@invoices_group.command("mark")
def invoices_mark(
    ref: str = ORG,
    invoice_id: str = typer.Argument(..., metavar="INVOICE_ID", help="einv_..."),
    status: str = typer.Option(..., "--status", help="paid, void, uncollectible (or open)."),
    name: str = OPERATOR,
) -> None:
    """Manual billing mode: mark a recorded invoice paid, void or uncollectible."""
    from modelux_server.enterprise import invoices

    who = operator(name)

    async def work(rt: Services) -> dict[str, Any]:
        async with rt.db.session() as session:
            found = await org_id(session, ref)
            body = parse(invoices.InvoiceUpdate, {"status": status})
            invoice = await invoices.update_manual(session, rt, who, found, invoice_id, body)
            return invoices.render(invoice, rt.clock.now())

    echo_json(with_services(work))


# -------------------------------------------------------------------------- sales


@admin.command("sales-inquiries")
def sales_inquiries(
    ref: str = typer.Option(None, "--org", help="Only this organization's (id, name or owner email)."),
    limit: int = typer.Option(50, "--limit", min=1, max=MAX_LIMIT, help="How many, newest first."),
    after: str = typer.Option(None, "--after", help="The next page: the cursor printed last time."),
    as_json: bool = AS_JSON,
) -> None:
    """ "Talk to sales" requests, newest first."""
    from modelux_server.sales import schemas as sales_schemas
    from modelux_server.sales import service as sales

    async def work(rt: Services) -> Any:
        async with rt.db.session() as session:
            only = await org_id(session, ref) if ref else None
            page = await sales.list_inquiries(session, PageRequest(after, limit), org_id=only)
            return [sales_schemas.render(q) for q in page.items], page.next_cursor

    rows, more = with_services(work)
    if as_json:
        echo_json({"data": rows, "next_cursor": more, "has_more": more is not None})
        return
    typer.echo(views.inquiries_table(rows))
    if more:
        typer.echo(f"(more: --after {more})")


# -------------------------------------------------------------------------- audit

audit_group = typer.Typer(no_args_is_help=True, help="The organizations' audit logs.")
admin.add_typer(audit_group, name="audit")


@audit_group.command("verify")
def audit_verify(
    ref: str = typer.Argument(
        None, metavar="[ORG]", help="An organization id, name or owner's email (default: every one)."
    ),
) -> None:
    """Recompute each organization's audit hash chain; exit 1 naming the first broken link of each
    organization whose chain does not hold."""
    from modelux_server.audit import chain
    from modelux_server.audit import repository as audit_repository

    async def work(rt: Services) -> list[chain.Verdict]:
        async with rt.db.read_sessionmaker() as session:
            ids = [await org_id(session, ref)] if ref else await audit_repository.organization_ids(session)
            await session.commit()
        verdicts = []
        for found in ids:
            # a short read transaction per organization: a long chain holds no lock on the others
            async with rt.db.read_sessionmaker() as session:
                verdicts.append(await chain.verify(session, found))
                await session.commit()
        return verdicts

    verdicts = with_services(work)
    for v in verdicts:
        if v.ok:
            typer.echo(f"{v.org_id}  ok      {v.events} event(s)")
        else:
            typer.echo(f"{v.org_id}  BROKEN  at event {v.broken_seq} ({v.broken_at}): {v.reason}")
    broken = sum(not v.ok for v in verdicts)
    if broken:
        fail(f"{broken} of {len(verdicts)} organization(s) have an audit chain that does not hold", code=1)
