"""Running a route against upstreams: single, fallback and ensemble.

Retries happen only across targets (fallback) and only for the failures the
config's `retry_on` names (by default 429, 5xx, timeouts and connection
errors; a 4xx is the request's own fault and goes back to the caller). The
request was counted at admission and stays counted whatever happens here.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from modelux_server.errors import (
    ModeluxError,
    UpstreamFailed,
    UpstreamRejected,
    UpstreamTimedOut,
    ValidationFailed,
)
from modelux_server.kit.egress import EgressGuard, policy_for, refusal
from modelux_server.proxy.lookups import Caller, Credential, Lookups
from modelux_server.proxy.metrics import ProxyMetrics
from modelux_server.proxy.providers._stream import completion_chunks
from modelux_server.proxy.providers.base import (
    ChatStream,
    UpstreamError,
    UpstreamRefused,
    UpstreamTimeout,
    Usage,
)
from modelux_server.proxy.providers.registry import ProviderRegistry
from modelux_server.proxy.resolve import Route, Target
from modelux_server.routing.aggregation import AGGREGATIONS, MemberResult, NoValidAnswer

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

Credentials = dict[Target, Credential]


@dataclass
class Outcome:
    body: dict[str, Any] | None
    target: Target
    usage: Usage | None
    upstream_ms: float
    stream: ChatStream | None = None
    headers: dict[str, str] = field(default_factory=dict)
    trace: list[dict[str, Any]] = field(default_factory=list)
    raw: bytes | None = None  # the upstream's bytes when `body` can be relayed as they are


class Executor:
    def __init__(
        self,
        lookups: Lookups,
        registry: ProviderRegistry,
        metrics: ProxyMetrics,
        default_timeout: float,
        *,
        tracer: Tracer | None = None,
    ) -> None:
        self.lookups = lookups
        self.registry = registry
        self.metrics = metrics
        self.default_timeout = default_timeout
        self.tracer = tracer  # None unless tracing is on (kit/tracing.py)
        self.egress = EgressGuard(policy_for(lookups.rt.settings.egress_allow))

    async def _credential(self, caller: Caller, target: Target) -> Credential:
        cred = await self.lookups.credential(caller.org_id, target.vendor, target.provider_id)
        if cred is None:
            raise ValidationFailed(
                f"No provider credential for '{target.vendor}'. Add one with POST /manage/v1/providers.",
                code="no_provider_credential",
                param="model",
            )
        return cred

    async def credentials(self, caller: Caller, route: Route) -> Credentials:
        """Every target's credential, looked up once, before admission: a target without
        one, or whose base_url the egress policy refuses, is a gateway 422 and is not counted."""
        creds = {target: await self._credential(caller, target) for target in route.targets}
        for target, cred in creds.items():
            # a credential without base_url goes to its vendor's built-in public endpoint
            base_url = cred.upstream.base_url
            if base_url is not None and not await self.egress.admits(base_url):
                raise refusal(
                    f"The provider credential for '{target.vendor}' points at a destination "
                    "the gateway's egress policy refuses (your administrator can allow it).",
                    param="model",
                )
        return creds

    async def call(
        self, route: Route, creds: Credentials, body: dict[str, Any], kind: str, stream: bool
    ) -> Outcome:
        if route.strategy == "ensemble" and kind == "chat":
            return await self._ensemble(route, creds, body)
        trace: list[dict[str, Any]] = []
        last: UpstreamError | None = None
        for number, target in enumerate(route.targets, 1):
            started = time.perf_counter()
            try:
                if self.tracer is None:
                    outcome = await self._attempt(target, creds[target], body, kind, stream)
                else:
                    outcome = await self._traced_attempt(number, target, creds[target], body, kind, stream)
            except UpstreamError as exc:
                elapsed = (time.perf_counter() - started) * 1000
                kind_label = (
                    "timeout" if isinstance(exc, UpstreamTimeout) else str(exc.status or "connection")
                )
                self.metrics.upstream_errors.labels(target.vendor, kind_label).inc()
                trace.append({"target": target.label, "error": kind_label, "ms": round(elapsed, 1)})
                last = exc
                if route.strategy != "fallback" or not falls_back(exc, route.retry_on):
                    break
                continue
            trace.append({"target": target.label, "ok": True, "ms": round(outcome.upstream_ms, 1)})
            outcome.trace = trace
            return outcome
        raise _gateway_error(last, trace, target)

    async def _traced_attempt(
        self, number: int, target: Target, cred: Credential, body: dict[str, Any], kind: str, stream: bool
    ) -> Outcome:
        """`_attempt` inside a span of its own: provider, model, attempt number, outcome."""
        from modelux_server.kit.tracing import end_attempt, upstream_span

        assert self.tracer is not None
        with upstream_span(self.tracer, provider=target.vendor, model=target.model, attempt=number) as span:
            try:
                outcome = await self._attempt(target, cred, body, kind, stream)
            except UpstreamError as exc:
                end_attempt(span, _failure(exc), exc.status)
                raise
            except TimeoutError:  # an ensemble member's own deadline
                end_attempt(span, "timeout", None)
                raise
            end_attempt(span, "ok", None if stream else 200)
            return outcome

    async def _attempt(
        self, target: Target, cred: Credential, body: dict[str, Any], kind: str, stream: bool
    ) -> Outcome:
        provider = self.registry.get(cred.upstream.vendor)
        timeout = target.timeout or self.default_timeout
        started = time.perf_counter()
        if kind == "embeddings":
            response = await provider.embeddings(
                body, model=target.model, credential=cred.upstream, timeout=timeout
            )
        elif stream:
            handle = await provider.chat_stream(
                body, model=target.model, credential=cred.upstream, timeout=timeout
            )
            elapsed = (time.perf_counter() - started) * 1000
            self.metrics.upstream_latency_for(target.vendor).observe(elapsed / 1000)
            return Outcome(None, target, None, elapsed, stream=handle)
        else:
            response = await provider.chat(
                body, model=target.model, credential=cred.upstream, timeout=timeout
            )
        elapsed = (time.perf_counter() - started) * 1000
        self.metrics.upstream_latency_for(target.vendor).observe(elapsed / 1000)
        return Outcome(response.body, target, response.usage, elapsed, raw=response.raw)

    async def _ensemble(self, route: Route, creds: Credentials, body: dict[str, Any]) -> Outcome:
        spec = route.spec
        member_timeout = spec.get("member_timeout_ms", 30_000) / 1000
        overall = spec.get("timeout_ms", 60_000) / 1000
        plain = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        started = time.perf_counter()

        async def member(index: int, target: Target) -> tuple[MemberResult, Outcome | None]:
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(member_timeout):
                    member_target = replace(target, timeout=member_timeout)
                    if self.tracer is None:
                        outcome = await self._attempt(member_target, creds[target], plain, "chat", False)
                    else:
                        outcome = await self._traced_attempt(
                            index + 1, member_target, creds[target], plain, "chat", False
                        )
                content = _content(outcome.body)
                result = MemberResult(
                    index,
                    target.label,
                    target.weight,
                    content is not None,
                    content,
                    (time.perf_counter() - t0) * 1000,
                    None,
                    time.monotonic(),
                )
                return result, outcome
            except UpstreamRefused:
                raise  # not a member's failure: the whole request is refused, see below
            except (UpstreamError, TimeoutError) as exc:
                error = (
                    "timeout"
                    if isinstance(exc, (TimeoutError, UpstreamTimeout))
                    else str(getattr(exc, "status", "error"))
                )
                return MemberResult(
                    index,
                    target.label,
                    target.weight,
                    False,
                    None,
                    (time.perf_counter() - t0) * 1000,
                    error,
                    time.monotonic(),
                ), None

        tasks = [asyncio.create_task(member(i, t)) for i, t in enumerate(route.targets)]
        done, pending = await asyncio.wait(tasks, timeout=overall, return_when=asyncio.FIRST_EXCEPTION)
        for task in pending:
            task.cancel()
        # A destination the egress policy refuses is a 422 for single and fallback
        # targets; an ensemble answering without that member would hide it.
        refused = [exc for t in done if isinstance(exc := t.exception(), UpstreamRefused)]
        if refused:
            raise _gateway_error(refused[0], [], route.targets[0])
        results = [t.result() for t in done]
        for task in pending:
            idx = tasks.index(task)
            target = route.targets[idx]
            results.append(
                (
                    MemberResult(
                        idx,
                        target.label,
                        target.weight,
                        False,
                        None,
                        overall * 1000,
                        "timeout",
                        time.monotonic(),
                    ),
                    None,
                )
            )
        results.sort(key=lambda r: r[0].index)
        members = [r[0] for r in results]
        trace = [
            {
                "member": m.index,
                "target": m.model,
                "ok": m.ok,
                "ms": round(m.latency_ms, 1),
                **({"error": m.error} if m.error else {}),
            }
            for m in members
        ]
        aggregation = spec.get("aggregation", "first_valid")
        try:
            agg = AGGREGATIONS[aggregation](members)
        except NoValidAnswer:
            raise UpstreamFailed(
                "Every ensemble member failed.", code="ensemble_failed", trace=trace
            ) from None
        winner = results[agg.winner.index][1]
        assert winner is not None
        usage = _sum_usage([r[1].usage for r in results if r[1] is not None])
        headers = {
            "x-modelux-ensemble-aggregation": aggregation,
            "x-modelux-ensemble-winner": str(agg.winner.index),
            "x-modelux-ensemble-agreed": ",".join(str(i) for i in agg.agreed),
            "x-modelux-ensemble-members": str(len(members)),
            "x-modelux-ensemble-succeeded": str(sum(1 for m in members if m.ok)),
        }
        trace.append(
            {"aggregation": aggregation, "winner": agg.winner.index, "agreed": agg.agreed, "votes": agg.votes}
        )
        return Outcome(
            winner.body,
            winner.target,
            usage,
            (time.perf_counter() - started) * 1000,
            headers=headers,
            trace=trace,
        )


def _failure(exc: UpstreamError) -> str:
    if isinstance(exc, UpstreamTimeout):
        return "timeout"
    if isinstance(exc, UpstreamRefused):
        return "refused"
    return str(exc.status or "connection")


def _content(body: dict[str, Any] | None) -> str | None:
    try:
        text = body["choices"][0]["message"]["content"]  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return None
    return text if isinstance(text, str) else None


def _sum_usage(items: list[Usage | None]) -> Usage | None:
    found = [u for u in items if u is not None]
    if not found:
        return None
    return Usage(
        sum(u.prompt_tokens for u in found),
        sum(u.completion_tokens for u in found),
        sum(u.total_tokens for u in found),
    )


def falls_back(exc: UpstreamError, retry_on: frozenset[str]) -> bool:
    """Whether a fallback config moves on to its next target after this failure.

    `retry_on` holds `429`, `4xx`, `5xx`, `timeout`, `connection` or single statuses
    (routing/strategies.py). A refused address or an answer too large to relay is a
    fault of the request's setup, not of one upstream: never retried elsewhere.
    """
    if isinstance(exc, UpstreamRefused):
        return False
    if isinstance(exc, UpstreamTimeout) or exc.status == 408:
        return "timeout" in retry_on
    status = exc.status
    if status is None:
        return exc.retryable and "connection" in retry_on
    if str(status) in retry_on:
        return True
    if status >= 500:
        return "5xx" in retry_on
    return status != 429 and 400 <= status < 500 and "4xx" in retry_on


def _gateway_error(last: UpstreamError | None, trace: list[dict[str, Any]], target: Target) -> ModeluxError:
    """What the caller gets once no target answered.

    An upstream 4xx keeps its status and the upstream's own code and message: the SDKs
    raise the matching class (`BadRequestError` for a context that is too long) and do
    not retry it, which a 502 would make them do. 5xx and broken connections are 502,
    timeouts 504. Every one names the provider and model of the last attempt.
    """
    if isinstance(last, UpstreamRefused):
        # the name passed the pre-admission check and then resolved elsewhere (DNS rebinding)
        return refusal("The upstream's address is refused by the gateway's egress policy.", param="model")
    error: ModeluxError
    if isinstance(last, UpstreamTimeout) or (last is not None and last.status == 408):
        error = UpstreamTimedOut("The upstream provider did not answer in time.", trace=trace)
    elif last is not None and last.status is not None and 400 <= last.status < 500:
        extra: dict[str, Any] = {"param": last.param} if last.param else {}
        said = last.message
        if last.status in (401, 403):
            # about the organization's stored credential, and vendors quote part of the key
            # back: a project key's holder learns which, not what
            said = "the provider refused the organization's credential for it"
        error = UpstreamRejected(
            f"{target.vendor} answered {last.status}: {said}",
            status=last.status,
            kind=last.kind,
            code=last.code or f"upstream_{last.status}",
            source="upstream",
            provider=target.vendor,
            upstream_status=last.status,
            **extra,
        )
        if last.status == 429 and last.retry_after is not None:
            error.headers["Retry-After"] = last.retry_after
    else:
        message = "The upstream provider failed" + (f": {last.message}" if last is not None else ".")
        error = UpstreamFailed(message, upstream_status=getattr(last, "status", None), trace=trace)
    error.headers["x-modelux-provider-used"] = target.vendor
    error.headers["x-modelux-model-used"] = target.model
    return error


def sse_single(body: dict[str, Any], usage: Usage | None = None) -> list[bytes]:
    """An aggregated (ensemble) answer delivered to a streaming caller as SSE."""
    return completion_chunks(body, usage)
