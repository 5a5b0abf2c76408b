"""The hosted pages a browser sees: Checkout (pay, decline), the customer portal, and an
invoice's page (``hosted_invoice_url``: pay, complete 3-D Secure) and PDF (``invoice_pdf``)."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .errors import StripeApiError
from .payments import DEFAULT_CARD
from .pdf import text_pdf
from .resource import Obj
from .subscriptions import ENDED

if TYPE_CHECKING:
    from . import StripeEmulator
    from .engine import Engine


def routes(emulator: StripeEmulator) -> list[Route]:
    engine = emulator._engine

    # Engine work is synchronous and lock-guarded: run it off the event loop, like the API.
    def view(kind: str, name: str, fn: Callable[[Engine, Obj], Response]) -> Callable[[Request], object]:
        def show(session_id: str) -> Response:
            with engine.lock:
                session = engine.store.find(session_id, kind)
                if session is None:
                    return _page(f"{name} not found", "", 404)
                return fn(engine, session)

        async def endpoint(request: Request) -> Response:
            return await run_in_threadpool(show, request.path_params["id"])

        return endpoint

    def action(fn: Callable[[StripeEmulator, str, dict[str, str]], Response]) -> Callable[[Request], object]:
        async def endpoint(request: Request) -> Response:
            form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
            return await run_in_threadpool(fn, emulator, request.path_params["id"], form)

        return endpoint

    return [
        Route(
            "/checkout/{id}", view("checkout.session", "Checkout session", _checkout_page), methods=["GET"]
        ),
        Route("/checkout/{id}/pay", action(_checkout_pay), methods=["POST"]),
        Route(
            "/portal/{id}", view("billing_portal.session", "Portal session", _portal_page), methods=["GET"]
        ),
        Route("/portal/{id}/action", action(_portal_action), methods=["POST"]),
        Route("/invoice/{id}", view("invoice", "Invoice", _invoice_page), methods=["GET"]),
        Route("/invoice/{id}/pay", action(_invoice_pay), methods=["POST"]),
        Route("/invoice/{id}/pdf", view("invoice", "Invoice", _invoice_pdf), methods=["GET"]),
        Route("/credit_note/{id}/pdf", view("credit_note", "Credit note", _credit_note_pdf), methods=["GET"]),
    ]


_STYLE = "body{font-family:sans-serif;max-width:40em;margin:2em auto}td{padding:.2em 1em}"


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status,
    )


def _money(amount: int, currency: str) -> str:
    return f"{amount / 100:.2f} {currency.upper()}"


def _checkout_page(engine: Engine, session: Obj) -> Response:
    session_id = session["id"]
    if session["status"] != "open":
        return _page(f"This checkout session is {session['status']}", "")
    rows = "".join(
        f"<tr><td>{html.escape(li['description'])}</td><td>{li['quantity']}</td>"
        f"<td>{_money(li['amount_total'], li['currency'])}"
        f" / {li['price']['recurring']['interval'] if li['price']['recurring'] else 'once'}"
        "</td></tr>"
        for li in engine.checkout.line_items(session_id)
    )
    email = html.escape(session["customer_email"] or "")
    email_field = (
        ""
        if session["customer"]
        else f"<p><label>Email <input name='email' type='email' value='{email}'></label></p>"
    )
    tax_field = (
        "<p><label>VAT ID <input name='tax_id' placeholder='DE123456789'></label></p>"
        if session["tax_id_collection"]["enabled"]
        else ""
    )
    card_field = f"<p><label>Card number <input name='card' placeholder='{DEFAULT_CARD}'></label></p>"
    cancel = (
        f"<p><a id='cancel' href='{html.escape(session['cancel_url'])}'>Cancel</a></p>"
        if session["cancel_url"]
        else ""
    )
    body = (
        f"<table id='line-items'>{rows}</table>"
        f"<form id='pay-form' method='post' action='/checkout/{session_id}/pay'>"
        f"{email_field}{tax_field}{card_field}"
        "<button id='pay' type='submit' name='outcome' value='succeed'>Pay</button> "
        "<button id='pay-decline' type='submit' name='outcome' value='decline'>"
        "Pay with a declined card</button></form>"
        f"{cancel}"
    )
    return _page("Emulated Stripe Checkout", body)


def _checkout_pay(emulator: StripeEmulator, session_id: str, form: dict[str, str]) -> Response:
    fails = form.get("outcome") == "decline"
    tax = form.get("tax_id") or None
    try:
        session = emulator.complete_checkout(
            session_id,
            payment_fails=fails,
            email=form.get("email") or None,
            tax_id=("eu_vat", tax) if tax else None,
            card=form.get("card") or DEFAULT_CARD,
        )
    except StripeApiError as exc:
        return _page("Checkout failed", f"<p>{html.escape(exc.message)}</p>", exc.status)
    except ValueError as exc:  # not a test card the emulator knows
        return _page("Checkout failed", f"<p>{html.escape(str(exc))}</p>", 400)
    if session["status"] != "complete":
        return _page("Your card was declined", f"<p><a href='/checkout/{session_id}'>Retry</a></p>", 402)
    target = (session["success_url"] or "").replace("{CHECKOUT_SESSION_ID}", session_id)
    if not target:
        return _page("Payment complete", "<p id='done'>Thanks!</p>")
    return RedirectResponse(target, status_code=303)


def _portal_page(engine: Engine, session: Obj) -> Response:
    session_id = session["id"]
    subs = [
        engine.render(s)
        for s in engine.store.all("subscriptions")
        if s["customer"] == session["customer"] and s["status"] not in ENDED
    ]
    offered = engine.portal.switchable_prices(engine.store.get(session["configuration"]))
    prices = [engine.store.get(price_id) for price_id in offered]
    names = {p["id"]: engine.catalog.product_name(p) for p in prices}
    cust = engine.store.get(session["customer"])
    options = "".join(
        f"<option value='{p['id']}'>{html.escape(names[p['id']])} "
        f"{_money(p['unit_amount'], p['currency'])}/{p['recurring']['interval']}</option>"
        for p in prices
    )
    blocks = []
    for sub in subs:
        price = sub["items"]["data"][0]["price"]
        blocks.append(
            f"<div class='subscription' id='{sub['id']}'>"
            f"<p>{html.escape(names.get(price['id'], price['id']))} — "
            f"{_money(price['unit_amount'], price['currency'])}/{price['recurring']['interval']}"
            f" — status <b>{sub['status']}</b>"
            f"{' (cancels at period end)' if sub['cancel_at_period_end'] else ''}</p>"
            f"<form method='post' action='/portal/{session_id}/action'>"
            f"<input type='hidden' name='subscription' value='{sub['id']}'>"
            f"<select name='price'>{options}</select> "
            "<button name='action' value='change_price'>Update plan</button> "
            "<button name='action' value='cancel'>Cancel plan</button></form></div>"
        )
    back = session["return_url"]
    body = (
        f"<p>Billing email: <span id='email'>{html.escape(cust['email'] or '')}</span></p>"
        + ("".join(blocks) or "<p>No active subscriptions.</p>")
        + (f"<p><a id='return' href='{html.escape(back)}'>Return</a></p>" if back else "")
    )
    return _page("Emulated Stripe customer portal", body)


def _portal_action(emulator: StripeEmulator, session_id: str, form: dict[str, str]) -> Response:
    sub_id = form.get("subscription", "")
    try:
        if form.get("action") == "change_price":
            emulator.portal_session_change_price(session_id, sub_id, form.get("price", ""))
        elif form.get("action") == "cancel":
            emulator.portal_session_cancel(session_id, sub_id)
    except StripeApiError as exc:
        return _page("Update failed", f"<p>{html.escape(exc.message)}</p>", exc.status)
    return RedirectResponse(f"/portal/{session_id}", status_code=303)


def _invoice_page(engine: Engine, inv: Obj) -> Response:
    invoice_id, currency = inv["id"], inv["currency"]
    if inv["status"] == "draft":
        return _page("This invoice is not finalized yet", "", 404)
    rows = "".join(
        f"<tr><td>{html.escape(line['description'] or '')}</td>"
        f"<td>{_money(line['amount'], currency)}</td></tr>"
        for line in inv["lines"]["data"]
    )
    summary = (
        f"<table id='summary'><tr><td>Number</td><td id='number'>{html.escape(inv['number'] or '')}</td></tr>"
        f"<tr><td>Total</td><td id='total'>{_money(inv['total'], currency)}</td></tr>"
        f"<tr><td>Amount due</td><td id='amount-due'>{_money(inv['amount_remaining'], currency)}</td></tr>"
        f"<tr><td>Status</td><td id='status'>{inv['status']}</td></tr></table>"
    )
    body = f"{summary}<table id='lines'>{rows}</table>"
    if inv["status"] == "open":
        intent = engine.payments.intent_of(inv)
        if engine.payments.needs_action(inv):
            body += (
                "<p id='action-required'>Your bank asks you to confirm this payment.</p>"
                f"<form method='post' action='/invoice/{invoice_id}/pay'>"
                "<button id='authenticate' type='submit'>Complete authentication</button></form>"
            )
        else:
            error = (intent or {}).get("last_payment_error") or {}
            if error:
                body += f"<p id='payment-error'>{html.escape(error['message'])}</p>"
            body += (
                f"<form method='post' action='/invoice/{invoice_id}/pay'>"
                "<p><label>Card number <input name='card' placeholder='the card on file'></label></p>"
                f"<button id='pay' type='submit'>Pay {_money(inv['amount_remaining'], currency)}</button>"
                "</form>"
            )
    elif inv["status"] == "paid":
        body += "<p id='paid'>Paid. Thank you!</p>"
    body += f"<p><a id='download-pdf' href='/invoice/{invoice_id}/pdf'>Download invoice</a></p>"
    return _page(f"Invoice {inv['number']}", body)


def _invoice_pay(emulator: StripeEmulator, invoice_id: str, form: dict[str, str]) -> Response:
    try:
        inv = emulator.pay_hosted_invoice(invoice_id, card=form.get("card") or None)
    except StripeApiError as exc:
        return _page("Payment failed", f"<p>{html.escape(exc.message)}</p>", exc.status)
    except ValueError as exc:  # not a test card the emulator knows
        return _page("Payment failed", f"<p>{html.escape(str(exc))}</p>", 400)
    if inv["status"] != "paid":
        return _page("Your card was declined", f"<p><a href='/invoice/{invoice_id}'>Try again</a></p>", 402)
    return RedirectResponse(f"/invoice/{invoice_id}", status_code=303)


def _pdf(lines: list[str]) -> Response:
    return Response(text_pdf(lines), media_type="application/pdf")


def _invoice_pdf(engine: Engine, inv: Obj) -> Response:
    if inv["status"] == "draft":
        return _page("This invoice is not finalized yet", "", 404)
    currency = inv["currency"]
    lines = [f"Invoice {inv['number']}", f"Status: {inv['status']}", ""]
    lines += [f"{line['description']}: {_money(line['amount'], currency)}" for line in inv["lines"]["data"]]
    lines += ["", f"Total: {_money(inv['total'], currency)}"]
    lines.append(f"Amount paid: {_money(inv['amount_paid'], currency)}")
    return _pdf(lines)


def _credit_note_pdf(engine: Engine, note: Obj) -> Response:
    currency = note["currency"]
    inv = engine.store.get(note["invoice"])
    return _pdf(
        [
            f"Credit note {note['number']}",
            f"For invoice {inv['number']}",
            f"Total: {_money(note['total'], currency)}",
            f"Reason: {note['reason'] or '-'}",
        ]
    )
