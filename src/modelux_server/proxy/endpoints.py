"""`/v1`: chat completions (plain and streaming), embeddings, models.

Order of work on every request, cheapest refusal first, and nothing counted
until the request is known to be servable:
authenticate (401) -> parse (400/422) -> resolve route, plan features and
credentials (402/422) -> admit against the monthly cap (402) -> upstream.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from modelux_server.errors import BadRequest, ModeluxError, ValidationFailed
from modelux_server.kit.ids import new_id
from modelux_server.kit.windows import window_at
from modelux_server.proxy.context import Caller, OrgContext
from modelux_server.proxy.execute import Outcome, sse_single
from modelux_server.proxy.facts import request_facts
from modelux_server.proxy.resolve import Route, resolve, resolve_rules
from modelux_server.proxy.state import ProxyState, proxy_state
from modelux_server.usage.service import admit

router = APIRouter(tags=["proxy"])


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The body is not valid JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.", code="invalid_json")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ValidationFailed("'model' is required and must be a string.", code="missing_field", param="model")
    return body


def _check_chat(body: dict[str, Any]) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValidationFailed("'messages' must be a non-empty list.", code="missing_field", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ValidationFailed(f"messages[{i}] needs a 'role'.", code="invalid_field", param=f"messages[{i}]")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise ValidationFailed("'stream' must be true or false.", code="invalid_field", param="stream")


class ProxyCall:
    """One request's journey, so the log row and headers are written in one place."""

    def __init__(self, state: ProxyState, request: Request, endpoint: str) -> None:
        self.state = state
        self.request = request
        self.endpoint = endpoint
        self.request_id = new_id("req")
        self.started = time.perf_counter()
        self.caller: Caller | None = None
        self.model: str | None = None
        self.counted = False
        self.stream = False

    def headers(self, outcome: Outcome | None = None) -> dict[str, str]:
        headers = {"X-Modelux-Request-Id": self.request_id}
        if outcome is not None:
            headers["x-modelux-provider-used"] = outcome.target.vendor
            headers["x-modelux-model-used"] = outcome.target.model
            headers.update(outcome.headers)
        return headers

    def log(self, status: int, outcome: Outcome | None = None, error: str | None = None) -> None:
        total = time.perf_counter() - self.started
        upstream = (outcome.upstream_ms / 1000) if outcome is not None else 0.0
        if outcome is not None and outcome.stream is None:
            self.state.metrics.overhead.observe(max(0.0, total - upstream))
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
                "model_used": outcome.target.label if outcome else None,
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
                "trace": json.dumps(outcome.trace)[:4000] if outcome and outcome.trace else None,
                "created_at": self.state.rt.clock.now(),
            }
        )

    def fail(self, exc: ModeluxError) -> JSONResponse:
        reason = exc.code if exc.status in (400, 401, 402, 422, 503) else f"upstream_{exc.status}"
        if not self.counted:
            self.state.metrics.rejected.labels(reason).inc()
        self.log(exc.status, error=exc.code)
        return JSONResponse(exc.body(), status_code=exc.status, headers={**exc.headers, **self.headers()})

    async def prepare(self, kind: str) -> tuple[Caller, OrgContext, Route, dict[str, Any]]:
        state = self.state
        self.caller = caller = await state.ctx.caller(self.request.headers.get("authorization"))
        body = _parse(await self.request.body())
        self.model = body["model"]
        if kind == "chat":
            _check_chat(body)
            self.stream = bool(body.get("stream"))
        org = await state.ctx.org(caller.org_id)
        route = await resolve(state.ctx, caller, org, body["model"])
        if route.strategy == "custom_rules":
            facts = await request_facts(state.rt, self.request, body, caller, org)
            route, _why = await resolve_rules(state.ctx, caller, org, route, facts)
        await state.executor.check_credentials(caller, route)
        return caller, org, route, body

    async def admit(self, caller: Caller, org: OrgContext) -> None:
        now = self.state.rt.clock.now()
        window = window_at(org.anchor_day, now)
        admitted = await admit(self.state.rt, caller.org_id, window, org.entitlements, now)
        self.counted = admitted.counted
        if admitted.counted:
            self.state.metrics.admitted.labels(self.endpoint).inc()
        else:
            self.state.metrics.admitted_uncounted.inc()


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    call = ProxyCall(proxy_state(request), request, "chat.completions")
    try:
        caller, org, route, body = await call.prepare("chat")
        await call.admit(caller, org)
        outcome = await call.state.executor.call(caller, route, body, "chat", call.stream)
    except ModeluxError as exc:
        return call.fail(exc)
    if call.stream:
        return StreamingResponse(
            _relay(call, outcome),
            media_type="text/event-stream",
            headers={**call.headers(outcome), "Cache-Control": "no-cache"},
        )
    call.log(200, outcome)
    return JSONResponse(outcome.body, headers=call.headers(outcome))


async def _relay(call: ProxyCall, outcome: Outcome) -> AsyncIterator[bytes]:
    if outcome.stream is None:  # an aggregated answer (ensemble) sent as SSE
        for chunk in sse_single(outcome.body or {}):
            yield chunk
        call.log(200, outcome)
        return
    status = 200
    try:
        async with outcome.stream as stream:
            async for chunk in stream:
                yield chunk
            outcome.usage = stream.usage
    except Exception:
        status = 502
        raise
    finally:
        call.log(status, outcome)


@router.post("/v1/embeddings")
async def embeddings(request: Request) -> Response:
    call = ProxyCall(proxy_state(request), request, "embeddings")
    try:
        caller, org, route, body = await call.prepare("embeddings")
        if "input" not in body:
            raise ValidationFailed("'input' is required.", code="missing_field", param="input")
        await call.admit(caller, org)
        outcome = await call.state.executor.call(caller, route, body, "embeddings", False)
    except ModeluxError as exc:
        return call.fail(exc)
    call.log(200, outcome)
    return JSONResponse(outcome.body, headers=call.headers(outcome))


@router.get("/v1/models")
async def models(request: Request) -> Response:
    """The project's routing configs as `@slug` models (listing is not a counted request)."""
    call = ProxyCall(proxy_state(request), request, "models")
    try:
        caller = await call.state.ctx.caller(request.headers.get("authorization"))
    except ModeluxError as exc:
        return call.fail(exc)
    slugs = await call.state.list_slugs(caller.project_id)
    data = [{"id": f"@{slug}", "object": "model", "created": 0, "owned_by": "modelux"} for slug in slugs]
    return JSONResponse({"object": "list", "data": data}, headers=call.headers())
