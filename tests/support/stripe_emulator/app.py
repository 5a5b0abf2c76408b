"""The HTTP face: auth, form decoding, validation, idempotency, expand[].

The hosted Checkout and portal pages are :mod:`.pages`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import pages
from .engine import Engine
from .errors import StripeApiError
from .params import decode_form, validate
from .routes import ListResult, match, path_exists
from .rules import enforce
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


class RequestLog:
    """Every API request the emulator accepted as valid, for tests to assert what was sent:
    method, path, the decoded parameters and the Idempotency-Key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []

    def add(self, method: str, path: str, params: dict[str, Any], key: str | None) -> None:
        with self._lock:
            self._entries.append({"method": method, "path": path, "params": params, "idempotency_key": key})

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)


class Outage:
    """A test hook: the next ``n`` API requests answer Stripe's 500 (an outage on Stripe's
    side), with ``Stripe-Should-Retry: false`` so the SDK gives up at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._left = 0

    def add(self, n: int) -> None:
        with self._lock:
            self._left += n

    def take(self) -> bool:
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            return True


def _json(
    status: int, body: dict[str, Any], request_id: str, extra: dict[str, str] | None = None
) -> Response:
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
        items = engine.checkout.line_items(node["id"])
        node[key] = {
            "object": "list",
            "data": items,
            "has_more": False,
            "url": f"/v1/checkout/sessions/{node['id']}/line_items",
        }
    if key == "payments" and node.get("object") == "invoice" and not node["id"].startswith("upcoming_"):
        node[key] = engine.payments.expanded_payments(node["id"])
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
            enforce(route.schema, params)
        except StripeApiError as exc:
            return _json(exc.status, exc.body(), request_id)
        emulator.request_log.add(method, path, params, key)
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
                engine.events.set_request(request_id, key)
                try:
                    result = route.handler(engine, params, args)
                    body = _render(engine, result, params, path)
                    status = 200
                finally:
                    engine.events.set_request(None, None)
        except StripeApiError as exc:
            status, body = exc.status, exc.body()
        except Exception as exc:  # an emulator bug: answer like Stripe's 500, keep the trace
            logger.exception("stripe emulator failed on %s %s", method, path)
            body = {"error": {"type": "api_error", "message": f"emulator error: {exc!r}"}}
        response = _json(status, body, request_id, {"Idempotency-Key": key} if key else None)
        if key:
            idempotency.finish(key, fingerprint, status, bytes(response.body))
        return response

    async def api(request: Request) -> Response:
        request_id = new_id("req_")[:18]
        try:
            _authenticate(request, emulator.api_key)
        except StripeApiError as exc:
            return _json(exc.status, exc.body(), request_id)
        if emulator.outage.take():
            error = {"error": {"type": "api_error", "message": "An unknown error occurred (outage)."}}
            return _json(500, error, request_id, {"Stripe-Should-Retry": "false"})
        is_post = request.method == "POST"
        raw = (await request.body()).decode() if is_post else request.url.query
        headers = {k.lower(): v for k, v in request.headers.items()}
        # Engine work is synchronous and lock-guarded; keep it off the event loop so a
        # webhook receiver calling back into us is served concurrently.
        return await run_in_threadpool(handle_api, request.method, request.url.path, headers, raw)

    return Starlette(
        routes=[
            Route("/v1/{path:path}", api, methods=["GET", "POST", "DELETE"]),
            *pages.routes(emulator),
        ]
    )


def _render(engine: Engine, result: Any, params: dict[str, Any], url: str) -> dict[str, Any]:
    paths = params.get("expand") or []
    if isinstance(result, ListResult):
        # A list's url is the path it was requested on, e.g. /v1/customers/{id}/tax_ids.
        body = paginate(result.items, params, url, engine.render)
    else:
        body = engine.render(result) if "id" in result and "deleted" not in result else result
    for path in paths:
        expand(engine, body, path)
    return body
