"""The hosted pages a browser sees: Checkout (pay, decline) and the customer portal."""

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
    cancel = (
        f"<p><a id='cancel' href='{html.escape(session['cancel_url'])}'>Cancel</a></p>"
        if session["cancel_url"]
        else ""
    )
    body = (
        f"<table id='line-items'>{rows}</table>"
        f"<form id='pay-form' method='post' action='/checkout/{session_id}/pay'>"
        f"{email_field}{tax_field}"
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
        )
    except StripeApiError as exc:
        return _page("Checkout failed", f"<p>{html.escape(exc.message)}</p>", exc.status)
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
