"""`/v1`: chat completions (plain and streaming), embeddings, models.

Order of work on every request, cheapest refusal first, and nothing counted
until the request is known to be servable:
authenticate (401) -> the key's per-minute rate limit (429) -> parse (400/422)
-> resolve route, plan features and credentials (402/422) -> admit against
the monthly cap (402) -> upstream. A 429 is therefore never counted toward the
monthly cap, and a request over both limits gets the 429 (waiting helps).

The routes are plain ASGI apps mounted as Starlette routes, not FastAPI
operations: the proxy parses and validates its own bodies (to answer in the
contract's error shapes), so FastAPI's dependency solving, validation and
Request/Response objects were pure per-request cost on the hottest path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter
from starlette.datastructures import Headers
from starlette.responses import StreamingResponse
from starlette.routing import Route as StarletteRoute
from starlette.types import Receive, Scope, Send

from modelux_server.auth.management import suspended
from modelux_server.errors import ModeluxError, UpstreamFailed, UpstreamRejected
from modelux_server.kit import request_context
from modelux_server.kit.ids import new_id
from modelux_server.pricing.catalog import models_for_vendor
from modelux_server.proxy import budgets
from modelux_server.proxy.asgi import (
    Endpoint,
    RawHeaders,
    header,
    header_value,
    raw_headers,
    read_body,
    send_json,
)
from modelux_server.proxy.budgets import Charge
from modelux_server.proxy.checks import check_chat, check_embeddings, parse_body
from modelux_server.proxy.codec import dumps
from modelux_server.proxy.execute import Credentials, Outcome, sse_single
from modelux_server.proxy.lookups import Caller, OrgContext
from modelux_server.proxy.providers.base import UpstreamError
from modelux_server.proxy.resolve import Route, resolve, resolve_rules
from modelux_server.proxy.rule_facts import rule_facts
from modelux_server.proxy.state import ProxyState
from modelux_server.proxy.surfaces import completions, messages, responses
from modelux_server.ratelimit.headers import rate_headers, refusal
from modelux_server.ratelimit.limiter import Allowed, Refused, Verdict
from modelux_server.ratelimit.policy import project_key_limit
from modelux_server.usage.service import admit

log = logging.getLogger("modelux.proxy")

STREAM_INTERRUPTED = "upstream_stream_interrupted"


def _state(scope: Scope) -> ProxyState:
    state: ProxyState = scope["app"].state.services.proxy
    return state


class ProxyCall:
    """One request's journey, so the log row and headers are written in one place."""

    __slots__ = (
        "state",
        "scope",
        "endpoint",
        "request_id",
        "started",
        "caller",
        "model",
        "counted",
        "stream",
        "context",
        "rate",
        "kind",
        "route",
        "body",
        "charge",
        "size",
        "logged",
    )

    def __init__(self, state: ProxyState, scope: Scope, endpoint: str) -> None:
        self.state = state
        self.scope = scope
        self.endpoint = endpoint
        # one id for the request log, the response headers and every log line
        self.context = request_context.current()
        self.request_id = self.context.request_id if self.context is not None else new_id("req")
        self.started = time.perf_counter()
        self.caller: Caller | None = None
        self.model: str | None = None
        self.counted = False
        self.stream = False
        self.rate: Verdict | None = None
        self.kind = "chat"
        self.route: Route | None = None
        self.body: dict[str, Any] | None = None
        self.charge: Charge | None = None  # the request's hold on its spend budgets
        self.size: int | None = None  # the body's bytes as sent, where it was not translated
        self.logged = False

    def authenticated(self, caller: Caller) -> Caller:
        self.caller = caller
        if self.context is not None:  # every later log line names the tenant
            self.context.org_id = caller.org_id
            self.context.project_id = caller.project_id
        return caller

    def headers(self, outcome: Outcome | None = None) -> RawHeaders:
        headers = [(b"x-modelux-request-id", self.request_id.encode())]
        if isinstance(self.rate, Allowed):  # a refusal's 429 carries its own
            headers.extend(raw_headers(rate_headers(self.rate)))
        if outcome is not None:
            headers.append((b"x-modelux-provider-used", header_value(outcome.target.vendor)))
            headers.append((b"x-modelux-model-used", header_value(outcome.target.model)))
            if outcome.headers:
                headers.extend(raw_headers(outcome.headers))
        if self.charge is not None:
            headers.extend(self.charge.headers)
        return headers

    def log(self, status: int, outcome: Outcome | None = None, error: str | None = None) -> None:
        """Write the request's log row; the end of every request passes here exactly once,
        so this is also where its budget hold is settled."""
        if self.logged:
            return
        self.logged = True
        if self.charge is not None:
            self._settle(status, outcome)
        total = time.perf_counter() - self.started
        metrics = self.state.metrics
        if outcome is not None and outcome.stream is None:
            metrics.overhead.observe(max(0.0, total - outcome.upstream_ms / 1000))
        if self.caller is None:
            return
        usage = outcome.usage if outcome is not None else None
        self.state.request_log.add(
            {
                "request_id": self.request_id,
                "org_id": self.caller.org_id,
                "project_id": self.caller.project_id,
                "api_key_id": self.caller.key_id,
                "endpoint": self.endpoint,
                "model_requested": (self.model or "")[:200] or None,
                "model_used": outcome.target.label[:200] if outcome else None,
                "provider": outcome.target.vendor if outcome else None,
                "status": status,
                "error_code": error,
                "counted": self.counted,
                "latency_ms": round(total * 1000, 3),
                "upstream_latency_ms": round(outcome.upstream_ms, 3) if outcome else None,
                "prompt_tokens": usage.prompt_tokens if usage else None,
                "completion_tokens": usage.completion_tokens if usage else None,
                "total_tokens": usage.total_tokens if usage else None,
                "stream": self.stream,
                "trace": dumps(outcome.trace)[:4000].decode("utf-8", "ignore")
                if outcome and outcome.trace
                else None,
                "created_at": self.state.rt.clock.now(),
            }
        )

    def _settle(self, status: int, outcome: Outcome | None) -> None:
        """Settle the hold off the answer's path: the real cost of an answer (its whole
        hold when the upstream did not report usage), nothing for a request that got none."""
        charge, meter = self.charge, self.state.rt.budget_meter
        if charge is None or charge.settled or meter is None:
            return
        cost = 0
        if outcome is not None and self.route is not None:
            prices = self.state.prices
            # an ensemble's usage is its members' together: priced at the dearest member
            targets = self.route.targets if self.route.strategy == "ensemble" else [outcome.target]
            cost = max(budgets.real_cost(prices, t, outcome.usage, charge.amount) for t in targets)
            if len(targets) > 1:
                # each member cost at most its own worst case, and the hold is their sum: the
                # dearest-member price of the summed usage can only overstate past it
                cost = min(cost, charge.amount)
        budgets.settle(self.state.rt, meter, charge, cost)

    async def wrap_up(self, outcome: Outcome | None) -> None:
        """The end of every request, whatever ended it: a request that was not logged
        (the client left before its stream started, or something failed that is not a
        ModeluxError) is logged now, which settles its budget hold, and an upstream
        stream nobody will read is closed."""
        if self.logged:
            return
        if outcome is not None:
            # an answer was made (a stream opened, or an ensemble's whole answer built) and the
            # client left before it: the upstream may bill it, so it settles as answered
            if outcome.stream is not None:
                await outcome.stream.aclose()
            self.log(499, outcome, "client_closed")
        else:
            self.log(500, None, "internal_error")

    async def fail(self, send: Send, exc: ModeluxError) -> None:
        # upstream codes are the provider's words: the metric gets the status only
        upstream = isinstance(exc, UpstreamRejected | UpstreamFailed)
        reason = f"upstream_{exc.status}" if upstream else exc.code
        if not self.counted:
            self.state.metrics.rejected_for(reason).inc()
        self.log(exc.status, error=exc.code)
        await send_json(send, exc.status, dumps(exc.body()), raw_headers(exc.headers) + self.headers())

    async def answer(self, send: Send, outcome: Outcome) -> None:
        self.log(200, outcome)
        # A strict JSON answer passed through untranslated is relayed byte for byte.
        body = outcome.raw if outcome.raw is not None else dumps(outcome.body)
        await send_json(send, 200, body, self.headers(outcome))

    async def prepare(
        self, kind: str, receive: Receive
    ) -> tuple[Caller, OrgContext, Route, Credentials, dict[str, Any]]:
        caller, org = await self.authorize()
        raw = await read_body(receive)
        self.size = len(raw)
        return await self.prepare_body(kind, caller, org, parse_body(raw))

    async def authorize(self, authorization: str | None = None) -> tuple[Caller, OrgContext]:
        """Authenticate the key (the `Authorization` header unless given) and take one
        request from its per-minute allowance."""
        lookups = self.state.lookups
        credential = authorization if authorization is not None else header(self.scope, b"authorization")
        caller = self.authenticated(await lookups.caller(credential))
        org = await lookups.org(caller.org_id)
        if org.suspended:
            raise suspended()
        await self.throttle(caller, org)
        return caller, org

    async def prepare_body(
        self, kind: str, caller: Caller, org: OrgContext, body: dict[str, Any]
    ) -> tuple[Caller, OrgContext, Route, Credentials, dict[str, Any]]:
        """Check a parsed body (an OpenAI one: the other surfaces translate theirs first),
        then resolve its route and the targets' credentials."""
        state = self.state
        self.model = body["model"]
        self.kind = kind
        self.body = body
        if kind == "chat":
            check_chat(body)
            self.stream = bool(body.get("stream"))
        else:
            check_embeddings(body)
        route = await resolve(state.lookups, caller, org, body["model"])
        if route.strategy == "custom_rules":
            facts = await rule_facts(state.rt, Headers(scope=self.scope), body, caller, org)
            route, _why = await resolve_rules(state.lookups, caller, org, route, facts)
        creds = await state.executor.credentials(caller, route)
        self.route = route
        return caller, org, route, creds, body

    async def throttle(self, caller: Caller, org: OrgContext) -> None:
        """Take one request from the key's per-minute allowance, or refuse with 429."""
        rt = self.state.rt
        limit = project_key_limit(rt.settings, org.entitlements.plan, caller.rate_limit)
        if limit is None:
            return
        self.rate = verdict = await rt.rate_limiter.check(f"sk:{caller.key_id}", limit)
        if isinstance(verdict, Refused):
            raise refusal(verdict, "api_key")

    async def admit(self, caller: Caller, org: OrgContext) -> None:
        """Hold the request's worst-case cost on its spend budgets, then count it.

        Budgets first: a request a budget refuses is not counted. A request the monthly
        cap then refuses lets its hold go again (`log` settles it at no cost).
        """
        rt = self.state.rt
        rules = await self.state.lookups.budgets(caller)
        if rules and rt.budget_meter is not None and self.route is not None and self.body is not None:
            self.charge = await budgets.reserve(
                rt,
                rt.budget_meter,
                self.state.prices,
                rules,
                self.route,
                self.body,
                self.size if self.size is not None else len(dumps(self.body)),
                self.kind,
                org.anchor_day,
            )
        now = rt.clock.now()
        window = self.state.windows.at(org.anchor_day, now)
        admitted = await admit(rt, caller.org_id, window, org.entitlements, now)
        self.counted = admitted.counted
        if admitted.counted:
            self.state.metrics.admitted_for(self.endpoint, caller.org_id).inc()
        else:
            self.state.metrics.admitted_uncounted.inc()


async def chat_completions(scope: Scope, receive: Receive, send: Send) -> None:
    call = ProxyCall(_state(scope), scope, "chat.completions")
    outcome: Outcome | None = None
    try:
        try:
            caller, org, route, creds, body = await call.prepare("chat", receive)
            await call.admit(caller, org)
            outcome = await call.state.executor.call(route, creds, body, "chat", call.stream)
        except ModeluxError as exc:
            await call.fail(send, exc)
            return
        if not call.stream:
            await call.answer(send, outcome)
            return
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        response = StreamingResponse(
            relay(call, outcome, include_usage),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
        response.raw_headers.extend(call.headers(outcome))
        await response(scope, receive, send)
    finally:
        await call.wrap_up(outcome)


async def relay(call: ProxyCall, outcome: Outcome, include_usage: bool) -> AsyncGenerator[bytes, None]:
    """The stream's bytes; a failure once they started ends the stream with an error event.

    The 200 and the first chunk are already out by then, so the error travels in-band
    as `data: {"error": {...}}` (what OpenAI sends, and what its SDKs raise as
    `APIError`), and no `[DONE]` follows: a client that waits for `[DONE]` sees an
    incomplete answer, never a complete-looking one. The request log records 502.
    """
    if outcome.stream is None:  # an aggregated answer (ensemble) sent as SSE
        try:
            yield b"".join(sse_single(outcome.body or {}, outcome.usage if include_usage else None))
        finally:
            call.log(200, outcome)
        return
    status, error = 200, None
    try:
        async with outcome.stream as stream:
            async for chunk in stream:
                yield chunk
            outcome.usage = stream.usage
    except UpstreamError as exc:
        status, error = 502, STREAM_INTERRUPTED
        call.state.metrics.upstream_errors.labels(outcome.target.vendor, "stream_interrupted").inc()
        cause = exc.__cause__  # a transport failure's own words are for the operator only
        detail = f"{exc.message} ({type(cause).__name__}: {cause})" if cause else exc.message
        log.warning(
            "request %s: the stream from %s failed after it started: %s",
            call.request_id,
            outcome.target.label,
            " ".join(detail.split())[:500],  # one line whatever the upstream sent
        )
        yield _error_event(
            UpstreamFailed(
                "The upstream provider's stream failed before the answer was complete.",
                code=STREAM_INTERRUPTED,
            )
        )
    except Exception:
        status, error = 500, "internal_error"
        log.exception("request %s: relaying the stream failed", call.request_id)
        yield _error_event(ModeluxError("Something went wrong on our side; the answer is incomplete."))
    finally:
        call.log(status, outcome, error)


def _error_event(exc: ModeluxError) -> bytes:
    return b"data: " + dumps(exc.body()) + b"\n\n"


async def embeddings(scope: Scope, receive: Receive, send: Send) -> None:
    call = ProxyCall(_state(scope), scope, "embeddings")
    try:
        try:
            caller, org, route, creds, body = await call.prepare("embeddings", receive)
            await call.admit(caller, org)
            outcome = await call.state.executor.call(route, creds, body, "embeddings", False)
        except ModeluxError as exc:
            await call.fail(send, exc)
            return
        await call.answer(send, outcome)
    finally:
        await call.wrap_up(None)


async def models(scope: Scope, receive: Receive, send: Send) -> None:
    """The project's routing configs as `@slug` models, then `vendor/model` for each model
    the price database knows of every vendor the organization has a credential for.

    A vendor the database does not know (a self-hosted OpenAI-compatible server) lists
    nothing, though `vendor/model` still routes to it. Listing is not a counted request.
    """
    call = ProxyCall(_state(scope), scope, "models")
    try:
        caller, _org = await call.authorize()
    except ModeluxError as exc:
        await call.fail(send, exc)
        return
    lookups = call.state.lookups
    data = [_listed(f"@{slug}", "modelux") for slug in await lookups.config_slugs(caller.project_id)]
    for vendor in await lookups.vendors(caller.org_id):
        data.extend(_listed(f"{vendor}/{name}", vendor) for name in models_for_vendor(vendor))
    await send_json(send, 200, dumps({"object": "list", "data": data}), call.headers())


def _listed(model: str, owner: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 0, "owned_by": owner}


# Mounted by create_app like every other router; FastAPI routes Starlette routes as they are.
router = APIRouter(tags=["proxy"])
router.routes.extend(
    [
        StarletteRoute("/v1/chat/completions", Endpoint(chat_completions), methods=["POST"]),
        StarletteRoute("/v1/embeddings", Endpoint(embeddings), methods=["POST"]),
        StarletteRoute("/v1/models", Endpoint(models), methods=["GET"]),
        # the other wire formats, each translated onto the chat pipeline (surfaces/)
        StarletteRoute("/v1/responses", Endpoint(responses.create), methods=["POST"]),
        StarletteRoute("/v1/completions", Endpoint(completions.create), methods=["POST"]),
        StarletteRoute("/v1/messages", Endpoint(messages.create), methods=["POST"]),
    ]
)
