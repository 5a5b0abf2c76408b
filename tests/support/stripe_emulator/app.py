"""The HTTP face: auth, form decoding, validation, idempotency, expand[], HTML pages."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .billing import ENDED, Engine
from .errors import StripeApiError
from .params import decode_form, validate
from .routes import ListResult, match, path_exists
from .store import new_id, paginate

if TYPE_CHECKING:
    from . import StripeEmulator

logger = logging.getLogger(__name__)


class _Idempotency:
    """Stripe's Idempotency-Key semantics: replay on same params, 400 on different ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._results: dict[str, tuple[str, int, bytes]] = {}
        self._in_flight: set[str] = set()

    def begin(self, key: str, fingerprint: str) -> tuple[int, bytes] | None:
        with self._lock:
            if key in self._in_flight:
                raise StripeApiError(
                    "There is currently another in-progress request using this Stripe-"
                    "Idempotency-Key. Please try again later.",
                    status=409,
                    type="idempotency_error",
                )
            if key in self._results:
                stored_fp, status, body = self._results[key]
                if stored_fp != fingerprint:
                    raise StripeApiError(
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with. Try using a key other than "
                        f"'{key}' if you meant to execute a different request.",
                        type="idempotency_error",
                    )
                return status, body
            self._in_flight.add(key)
            return None

    def finish(self, key: str, fingerprint: str, status: int | None, body: bytes) -> None:
        with self._lock:
            self._in_flight.discard(key)
            if status is not None:
                self._results[key] = (fingerprint, status, body)


def _json(status: int, body: dict[str, Any], request_id: str, extra: dict[str, str] | None = None):
    headers = {"Request-Id": request_id}
    headers.update(extra or {})
    return Response(
        json.dumps(body, indent=2),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _authenticate(request: Request, api_key: str) -> None:
    header = request.headers.get("authorization", "")
    if header.startswith("Bearer "):
        given = header[len("Bearer ") :]
    elif header.startswith("Basic "):
        given = base64.b64decode(header[len("Basic ") :]).decode().split(":", 1)[0]
    else:
        raise StripeApiError(
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            status=401,
        )
    if given != api_key:
        masked = given[:8] + "*" * max(len(given) - 12, 0) + given[-4:]
        raise StripeApiError(f"Invalid API Key provided: {masked}", status=401)


def expand(engine: Engine, node: dict[str, Any], path: str) -> None:
    """Resolve one ``expand[]`` path (``subscription``, ``data.customer``, ...) in place."""
    _expand(engine, node, path.split("."), path)


def _expand(engine: Engine, node: Any, parts: list[str], full: str) -> None:
    if isinstance(node, list):
        for child in node:
            _expand(engine, child, parts, full)
        return
    if not isinstance(node, dict):
        return
    key, rest = parts[0], parts[1:]
    if key == "line_items" and node.get("object") == "checkout.session":
        items = engine.session_line_items(node["id"])
        node[key] = {
            "object": "list",
            "data": items,
            "has_more": False,
            "url": f"/v1/checkout/sessions/{node['id']}/line_items",
        }
    if key not in node:
        raise StripeApiError(f"This property cannot be expanded ({full}).", param="expand")
    value = node[key]
    if isinstance(value, str):
        if value not in engine.store.objects:
            raise StripeApiError(f"This property cannot be expanded ({full}).", param="expand")
        value = node[key] = engine.render(engine.store.get(value))
    if rest and value is not None:
        _expand(engine, value, rest, full)


def build_app(emulator: StripeEmulator) -> Starlette:
    engine = emulator._engine
    idempotency = _Idempotency()

    def handle_api(method: str, path: str, headers: dict[str, str], raw: str) -> Response:
        request_id = new_id("req_")[:18]
        pairs = parse_qsl(raw, keep_blank_values=True)
        key = headers.get("idempotency-key") if method == "POST" else None
        try:
            found = match(method, path)
            if found is None:
                if path.endswith("/search"):
                    raise StripeApiError(
                        f"Unrecognized request URL ({method}: {path}). The Stripe emulator "
                        "does not implement search; use the list endpoints.",
                        status=404,
                    )
                if path_exists(path):
                    raise StripeApiError(
                        f"Unrecognized request URL ({method}: {path}). This endpoint does not "
                        f"support {method}.",
                        status=404,
                    )
                raise StripeApiError(
                    f"Unrecognized request URL ({method}: {path}). Please see "
                    "https://stripe.com/docs or we can help at https://support.stripe.com/.",
                    status=404,
                )
            route, args = found
            params = validate(decode_form(pairs), route.schema)
        except StripeApiError as exc:
            return _json(exc.status, exc.body(), request_id)
        fingerprint = hashlib.sha256(f"{method} {path} {sorted(pairs)}".encode()).hexdigest()
        if key:
            try:
                replay = idempotency.begin(key, fingerprint)
            except StripeApiError as exc:
                return _json(exc.status, exc.body(), request_id)
            if replay is not None:
                return Response(
                    replay[1],
                    status_code=replay[0],
                    media_type="application/json",
                    headers={"Request-Id": request_id, "Idempotent-Replayed": "true", "Idempotency-Key": key},
                )
        status, body = 500, {}
        try:
            with engine.lock:
                engine.set_request(request_id, key)
                try:
                    result = route.handler(engine, params, args)
                    body = _render(engine, result, params)
                    status = 200
                finally:
                    engine.set_request(None, None)
        except StripeApiError as exc:
            status, body = exc.status, exc.body()
        except Exception as exc:  # an emulator bug: answer like Stripe's 500, keep the trace
            logger.exception("stripe emulator failed on %s %s", method, path)
            body = {"error": {"type": "api_error", "message": f"emulator error: {exc!r}"}}
        response = _json(status, body, request_id, {"Idempotency-Key": key} if key else None)
        if key:
            idempotency.finish(key, fingerprint, status, response.body)
        return response

    async def api(request: Request) -> Response:
        request_id = new_id("req_")[:18]
        try:
            _authenticate(request, emulator.api_key)
        except StripeApiError as exc:
            return _json(exc.status, exc.body(), request_id)
        is_post = request.method == "POST"
        raw = (await request.body()).decode() if is_post else request.url.query
        headers = {k.lower(): v for k, v in request.headers.items()}
        # Engine work is synchronous and lock-guarded; keep it off the event loop so a
        # webhook receiver calling back into us is served concurrently.
        return await run_in_threadpool(handle_api, request.method, request.url.path, headers, raw)

    async def checkout_page(request: Request) -> Response:
        session_id = request.path_params["id"]
        return await run_in_threadpool(_checkout_page, emulator, session_id)

    async def checkout_pay(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        session_id = request.path_params["id"]
        return await run_in_threadpool(_checkout_pay, emulator, session_id, form)

    async def portal_page(request: Request) -> Response:
        return await run_in_threadpool(_portal_page, emulator, request.path_params["id"])

    async def portal_action(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        session_id = request.path_params["id"]
        return await run_in_threadpool(_portal_action, emulator, session_id, form)

    return Starlette(
        routes=[
            Route("/v1/{path:path}", api, methods=["GET", "POST", "DELETE"]),
            Route("/checkout/{id}", checkout_page, methods=["GET"]),
            Route("/checkout/{id}/pay", checkout_pay, methods=["POST"]),
            Route("/portal/{id}", portal_page, methods=["GET"]),
            Route("/portal/{id}/action", portal_action, methods=["POST"]),
        ]
    )


def _render(engine: Engine, result: Any, params: dict[str, Any]) -> dict[str, Any]:
    paths = params.get("expand") or []
    if isinstance(result, ListResult):
        body = paginate(result.items, params, result.url, engine.render)
    else:
        body = engine.render(result) if "id" in result and "deleted" not in result else result
    for path in paths:
        expand(engine, body, path)
    return body


# ------------------------------------------------------------------------ HTML pages
_STYLE = "body{font-family:sans-serif;max-width:40em;margin:2em auto}td{padding:.2em 1em}"


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status,
    )


def _money(amount: int, currency: str) -> str:
    return f"{amount / 100:.2f} {currency.upper()}"


def _checkout_page(emulator: StripeEmulator, session_id: str) -> Response:
    engine = emulator._engine
    with engine.lock:
        session = engine.store.objects.get(session_id)
        if session is None or session["object"] != "checkout.session":
            return _page("Checkout session not found", "", 404)
        if session["status"] != "open":
            return _page(f"This checkout session is {session['status']}", "")
        rows = "".join(
            f"<tr><td>{html.escape(li['description'])}</td><td>{li['quantity']}</td>"
            f"<td>{_money(li['amount_total'], li['currency'])}"
            f" / {li['price']['recurring']['interval'] if li['price']['recurring'] else 'once'}"
            "</td></tr>"
            for li in engine.session_line_items(session_id)
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


def _portal_page(emulator: StripeEmulator, session_id: str) -> Response:
    engine = emulator._engine
    with engine.lock:
        session = engine.store.objects.get(session_id)
        if session is None or session["object"] != "billing_portal.session":
            return _page("Portal session not found", "", 404)
        subs = [
            engine.render(s)
            for s in engine.store.all("subscriptions")
            if s["customer"] == session["customer"] and s["status"] not in ENDED
        ]
        prices = [p for p in engine.store.all("prices") if p["active"] and p["type"] == "recurring"]
        names = {p["id"]: engine.store.get(p["product"])["name"] for p in prices}
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
            emulator.portal_change_price(sub_id, form.get("price", ""))
        elif form.get("action") == "cancel":
            emulator.portal_cancel_at_period_end(sub_id)
    except StripeApiError as exc:
        return _page("Update failed", f"<p>{html.escape(exc.message)}</p>", exc.status)
    return RedirectResponse(f"/portal/{session_id}", status_code=303)
