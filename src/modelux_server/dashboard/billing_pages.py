"""Settings -> Billing: plan, meters, plan table, Checkout, plan changes, portal, invoices,
and the "Talk to sales" form."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import FormData

from modelux_server.auth.sessions import Viewer
from modelux_server.billing import checkout as self_serve_checkout
from modelux_server.billing import schemas, subscriptions
from modelux_server.billing.processor import BillingProcessorError, InvoiceView
from modelux_server.billing.subscriptions import PlanChangePreview
from modelux_server.billing.summary import billing_summary, dormant_items
from modelux_server.dashboard import billing_view, web
from modelux_server.dashboard.resource_pages import fields
from modelux_server.errors import ModeluxError, ValidationFailed
from modelux_server.kit.pagination import Page, PageRequest
from modelux_server.kit.schemas import parse
from modelux_server.plans.catalog import INTERVALS
from modelux_server.plans.entitlements import Entitlements
from modelux_server.sales import service as sales
from modelux_server.sales.schemas import NEED_LABELS, NEEDS, SalesInquiryCreate
from modelux_server.services import services_of

log = logging.getLogger("modelux.dashboard")

router = APIRouter(prefix="/settings/billing", include_in_schema=False)

NOTICES = {
    "welcome": "Welcome! Your organization is on the Free plan: no card needed.",
    "welcome_verify": (
        "Welcome! Your organization is on the Free plan: no card needed. We emailed you a link: "
        "confirm your address before adding provider credentials."
    ),
    "joined": "You joined the organization.",
    "subscribed": "Your subscription is active. Thanks!",
    "changed": "Your plan was changed. It is in effect now.",
    "canceled": "Checkout was canceled; nothing changed.",
}

INVOICES_PER_PAGE = 20


def _interval(value: object, default: str) -> str:
    return value if isinstance(value, str) and value in INTERVALS else default


def _problem(exc: ModeluxError) -> dict[str, Any]:
    """The error as the page shows it: payment errors in the page's words, with their links kept."""
    problem = web.problem(exc)
    words = billing_view.PAYMENT_WORDS.get(problem.get("code", ""))
    return {**problem, "message": words} if words else problem


async def _billing_page(
    request: Request,
    viewer: Viewer,
    *,
    status: int = 200,
    problem: dict[str, Any] | None = None,
    sales_problem: dict[str, Any] | None = None,
    sales_form: dict[str, Any] | None = None,
) -> Response:
    rt = services_of(request)
    query = request.query_params
    synced = False
    if query.get("checkout") == "success" and query.get("session_id"):
        synced = await _sync_checkout_return(request, viewer, str(query.get("session_id")))
    async with rt.db.session() as session:
        summary = await billing_summary(session, rt, viewer.org_id)
    interval = _interval(query.get("interval"), summary.plan.interval)
    highlight = query.get("plan") if query.get("plan") in rt.catalog.plans else None
    checkout = query.get("checkout")
    pending = checkout == "success" and not summary.has_subscription
    # the same notice the pending page's poll leads to once the webhook has landed
    notice = NOTICES.get(
        query.get("notice") or ("canceled" if checkout == "cancel" else "subscribed" if synced else "")
    )
    return web.page(
        request,
        "billing.html",
        viewer,
        status=status,
        summary=summary,
        meters=billing_view.meters(summary),
        tax_ids=billing_view.tax_ids(summary),
        cards=billing_view.plan_cards(rt.catalog, summary, interval, highlight),
        interval=interval,
        highlight=highlight,
        pending=pending,
        notice=notice,
        problem=problem,
        sales_needs=[(need, NEED_LABELS[need]) for need in NEEDS],
        sales_form=sales_form or {},
        sales_problem=sales_problem,
        sales_sent=query.get("sales") == "sent",
        sales_url=rt.settings.sales_url,
        sales_email=next(iter(sales.sales_addresses(rt)), None),
    )


async def _sync_checkout_return(request: Request, viewer: Viewer, checkout_session_id: str) -> bool:
    """Back from Checkout: show the paid plan now rather than wait for the webhook.

    Best effort: whatever goes wrong, the page still renders and the pending
    notice polls `/status` until the webhook lands, as before.
    """
    rt = services_of(request)
    try:
        async with rt.db.session() as session:
            return await self_serve_checkout.sync_checkout_return(
                session, rt, viewer.principal, checkout_session_id
            )
    except (BillingProcessorError, ModeluxError) as exc:
        log.info("checkout return %s not synced: %s", checkout_session_id, exc)
        return False


@router.get("")
async def billing(request: Request, viewer: Viewer = Depends(web.current_viewer)) -> Response:
    return await _billing_page(request, viewer)


@router.get("/status")
async def billing_status(request: Request, viewer: Viewer = Depends(web.current_viewer)) -> JSONResponse:
    """Polled by the page after Checkout until the subscription webhook has landed."""
    rt = services_of(request)
    async with rt.db.session() as session:
        summary = await billing_summary(session, rt, viewer.org_id)
    body = {
        "plan": schemas.render_current_plan(summary.plan),
        "status": summary.status,
        "has_subscription": summary.has_subscription,
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.post("/checkout")
async def checkout(request: Request, viewer: Viewer = Depends(web.current_viewer)) -> Response:
    form = await web.checked_form(request, viewer)
    rt = services_of(request)
    try:
        async with rt.db.session() as session:
            started = await self_serve_checkout.start_checkout(
                session,
                rt,
                viewer.principal,
                plan=str(form.get("plan", "")),
                interval=_interval(form.get("interval"), "monthly"),
            )
    except ModeluxError as exc:
        return await _billing_page(request, viewer, status=exc.status, problem=_problem(exc))
    return web.see_other(started.url)


@router.post("/portal")
async def portal(request: Request, viewer: Viewer = Depends(web.current_viewer)) -> Response:
    await web.checked_form(request, viewer)
    rt = services_of(request)
    try:
        async with rt.db.session() as session:
            opened = await self_serve_checkout.open_portal(
                session, rt, viewer.principal, return_url=f"{rt.public_url}/settings/billing"
            )
    except ModeluxError as exc:
        return await _billing_page(request, viewer, status=exc.status, problem=_problem(exc))
    return web.see_other(opened.url)


@router.get("/change")
async def confirm_change(request: Request, viewer: Viewer = Depends(web.current_viewer)) -> Response:
    """The confirmation step: what changes, and what Stripe charges or refunds for it now.

    The amounts are Stripe's invoice preview. When there is none to show
    (Stripe unreachable, an unpaid renewal, no payment processor) the page
    says why and offers no button: nothing is charged that was not shown first.
    """
    rt = services_of(request)
    plan = rt.catalog.get(request.query_params.get("plan", ""))
    if plan is None or not plan.self_serve:
        return web.see_other("/settings/billing")
    async with rt.db.session() as session:
        summary = await billing_summary(session, rt, viewer.org_id)
        interval = _interval(request.query_params.get("interval"), summary.plan.interval)
        target = Entitlements(plan=plan, catalog=rt.catalog, public_url=rt.public_url)
        turned_off = await dormant_items(session, rt, viewer.org_id, target)
    already_off = {item.id for item in summary.dormant}
    impact = billing_view.impact(rt.catalog, summary, plan)
    preview: PlanChangePreview | None = None
    problem: dict[str, Any] | None = None
    status = 200
    if viewer.can_act:  # members cannot change the plan, so they are shown no charge
        try:
            async with rt.db.session() as session:
                preview = await subscriptions.preview_change(
                    session, rt, viewer.principal, plan=plan.id, interval=interval
                )
        except ModeluxError as exc:
            problem, status = _problem(exc), exc.status
    return web.page(
        request,
        "billing_change.html",
        viewer,
        status=status,
        problem=problem,
        summary=summary,
        plan=plan,
        interval=interval,
        price=plan.price_cents(interval),
        impact=impact,
        preview=preview,
        settlement=None
        if preview is None
        else billing_view.settlement(preview.amount_due, preview.credit, preview.refund),
        # the preview's list when there is one (the service's rule); without one, the same facts
        # from the summary, so a member still sees what a downgrade switches off
        features_off=impact.features_lost if preview is None else preview.dormant,
        refund_policy=billing_view.REFUND_POLICY,
        proration_note=billing_view.PRORATION_NOTE,
        title=billing_view.change_label(rt.catalog, summary, plan, interval),
        configs_off=[item for item in turned_off if item.id not in already_off],
    )


@router.post("/change")
async def change(request: Request, viewer: Viewer = Depends(web.current_viewer)) -> Response:
    form = await web.checked_form(request, viewer)
    rt = services_of(request)
    try:
        interval = form.get("interval")
        if interval not in INTERVALS:
            raise ValidationFailed("interval must be 'monthly' or 'annual'", param="interval")
        async with rt.db.session() as session:
            await subscriptions.change_plan(
                session, rt, viewer.principal, plan=str(form.get("plan", "")), interval=str(interval)
            )
    except ModeluxError as exc:
        return await _billing_page(request, viewer, status=exc.status, problem=_problem(exc))
    return web.see_other("/settings/billing?notice=changed")


@router.get("/invoices")
async def invoices(request: Request, viewer: Viewer = Depends(web.current_viewer)) -> Response:
    """The organization's Stripe invoices, newest first, a page at a time (`?cursor=`).

    A page of its own rather than a section of the billing page: invoices are
    read from Stripe, while the billing page renders from our database alone,
    so it stays quick and works while Stripe is unreachable.
    """
    rt = services_of(request)
    cursor = request.query_params.get("cursor")
    found: Page[InvoiceView] = Page([], None)
    problem: dict[str, Any] | None = None
    status = 200
    try:
        page = PageRequest.of(cursor, INVOICES_PER_PAGE)
        async with rt.db.session() as session:
            found = await subscriptions.list_invoices(session, rt, viewer.principal, page)
    except ModeluxError as exc:
        problem, status = _problem(exc), exc.status
    return web.page(
        request,
        "billing_invoices.html",
        viewer,
        status=status,
        problem=problem,
        invoices=found.items,
        next_cursor=found.next_cursor,
        paged=bool(cursor),
        billing_mode=rt.settings.billing_mode,
        level=billing_view.invoice_level,
    )


def _whole(value: str) -> int | str:
    # a number field's text as the JSON number it stands for; anything else is left for
    # the body schema to refuse in its own words (and int() never sees thousands of digits)
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 20 else value


def _sales_body(form: FormData) -> dict[str, Any]:
    """The form as the API body it stands for; blank fields count as left out."""
    body: dict[str, Any] = fields(form, "message", "contact_email")
    for name, value in fields(form, "seats", "monthly_requests").items():
        body[name] = _whole(value.strip())
    needs = [need for need in form.getlist("needs") if isinstance(need, str)]
    if needs:
        body["needs"] = needs
    return body


@router.post("/sales-inquiry")
async def sales_inquiry(request: Request, viewer: Viewer = Depends(web.current_viewer)) -> Response:
    """The "Talk to sales" form: any member may send it (sales/service.py says why)."""
    form = await web.checked_form(request, viewer)
    rt = services_of(request)
    try:
        body = parse(SalesInquiryCreate, _sales_body(form))
        async with rt.db.session() as session:
            await sales.create(session, rt, viewer.principal, body)
    except ModeluxError as exc:
        kept: dict[str, Any] = {
            name: value for name, value in form.items() if isinstance(value, str) and name != "csrf_token"
        }
        kept["needs"] = [need for need in form.getlist("needs") if isinstance(need, str)]
        return await _billing_page(
            request, viewer, status=exc.status, sales_problem=web.problem(exc), sales_form=kept
        )
    return web.see_other("/settings/billing?sales=sent#sales")
