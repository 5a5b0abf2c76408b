"""Adapter for the Anthropic Messages API, translating to and from OpenAI chat format.

Request mapping: system/developer messages -> ``system``; user/assistant messages keep
their order (consecutive same-role turns are merged, as Anthropic wants alternation);
text and ``image_url`` parts become text and image blocks; ``max_tokens`` /
``max_completion_tokens`` -> ``max_tokens`` (default 1024, Anthropic requires it);
``temperature`` is clamped to Anthropic's 0..1; ``top_p``; ``stop`` ->
``stop_sequences``; ``user`` -> ``metadata.user_id``.

Not translated: tool calling (``tools``, ``tool_calls``, ``tool`` messages) and
``n > 1`` are refused with a non-retryable 400 rather than silently dropped, so callers
never get an answer that ignored their tools. ``response_format``, ``seed``,
``logprobs`` and penalties are ignored. Embeddings do not exist at Anthropic (400).
"""

# The contract passes `timeout` explicitly: adapters apply it per HTTP phase and
# as an overall deadline, which an outer asyncio.timeout alone cannot express.
# ruff: noqa: ASYNC109

from __future__ import annotations

import time
from typing import Any

from ..codec import loads
from ._http import SSE_DONE, HttpClient, post_json, sse_event, summary
from ._stream import Event, completion_chunks, not_a_stream, open_stream
from .base import (
    JSON,
    ChatStream,
    UpstreamCredential,
    UpstreamError,
    UpstreamResponse,
    Usage,
    unsupported,
)

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}

# Anthropic reports some failures as an SSE ``error`` event after HTTP 200.
_ERROR_EVENT_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            p["text"]
            for p in content
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        )
    return ""


def _image_block(part: JSON) -> JSON:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise unsupported("an image_url part needs a 'url' string")
    if url.startswith("data:") and ";base64," in url:
        media_type, data = url[5:].split(";base64,", 1)
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: Any) -> list[JSON]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[JSON] = []
    for part in content or []:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            blocks.append(_image_block(part))
        else:
            raise unsupported(f"content part type {kind!r} is not supported for Anthropic")
    return blocks


def to_anthropic(body: JSON, model: str) -> JSON:
    """Translate an OpenAI chat request into an Anthropic Messages request."""
    if body.get("tools") or body.get("functions"):
        raise unsupported("tool calling is not supported for Anthropic models yet")
    if (body.get("n") or 1) > 1:
        raise unsupported("n > 1 is not supported for Anthropic models")
    system: list[str] = []
    messages: list[JSON] = []
    for msg in body.get("messages") or []:
        role = msg.get("role")
        if role in ("system", "developer"):
            system.append(_text_of(msg.get("content")))
            continue
        if role not in ("user", "assistant") or msg.get("tool_calls"):
            raise unsupported(f"{role!r} messages and tool calls are not supported for Anthropic")
        blocks = _blocks(msg.get("content"))
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})

    out: JSON = {
        "model": model,
        "messages": messages,
        "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS,
    }
    if system:
        out["system"] = "\n\n".join(s for s in system if s)
    if body.get("temperature") is not None:
        out["temperature"] = min(float(body["temperature"]), 1.0)
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("user"):
        out["metadata"] = {"user_id": str(body["user"])}
    return out


def usage_from_anthropic(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    # OpenAI's prompt_tokens includes cached tokens; Anthropic reports them apart.
    try:
        prompt = sum(
            int(raw.get(k) or 0)
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        )
        completion = int(raw.get("output_tokens") or 0)
    except (TypeError, ValueError):  # an upstream's malformed counts are not our failure
        return None
    return Usage(prompt, completion, prompt + completion)


def to_openai(answer: JSON) -> JSON:
    """Translate an Anthropic Messages response into an OpenAI ``chat.completion``."""
    blocks = answer.get("content")
    text = "".join(
        b["text"]
        for b in (blocks if isinstance(blocks, list) else [])
        if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
    )
    usage = usage_from_anthropic(answer.get("usage"))
    return {
        "id": f"chatcmpl-{answer.get('id', '')}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": FINISH_REASONS.get(str(answer.get("stop_reason") or ""), "stop"),
            }
        ],
        "usage": (usage or Usage()).to_openai(),
    }


def messages_url(credential: UpstreamCredential) -> str:
    base = (credential.base_url or DEFAULT_BASE_URL).rstrip("/")
    # Accept base URLs configured either with or without the /v1 suffix.
    return base + ("/messages" if base.endswith("/v1") else "/v1/messages")


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, client: HttpClient) -> None:
        self._client = client

    def _headers(self, credential: UpstreamCredential) -> dict[str, str]:
        return {"x-api-key": credential.api_key, "anthropic-version": API_VERSION}

    async def chat(
        self, body: JSON, *, model: str, credential: UpstreamCredential, timeout: float
    ) -> UpstreamResponse:
        status, answer, _raw = await post_json(
            self._client,
            messages_url(credential),
            headers=self._headers(credential),
            payload=to_anthropic(body, model),
            timeout=timeout,
        )
        converted = to_openai(answer)
        return UpstreamResponse(status, converted, Usage.from_openai(converted["usage"]))

    async def chat_stream(
        self, body: JSON, *, model: str, credential: UpstreamCredential, timeout: float
    ) -> ChatStream:
        payload = {**to_anthropic(body, model), "stream": True}
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return await open_stream(
            self._client,
            messages_url(credential),
            headers=self._headers(credential),
            payload=payload,
            timeout=timeout,
            translation=_StreamState(include_usage),
        )

    async def embeddings(
        self, body: JSON, *, model: str, credential: UpstreamCredential, timeout: float
    ) -> UpstreamResponse:
        raise unsupported("Anthropic does not offer an embeddings API")


class _StreamState:
    """Turns Anthropic stream events into OpenAI ``chat.completion.chunk`` SSE bytes."""

    def __init__(self, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.finished = False
        self.id = "chatcmpl-"
        self.model = ""
        self.created = int(time.time())
        self.raw_usage: JSON = {}

    def usage(self) -> Usage | None:
        return usage_from_anthropic(self.raw_usage) if self.raw_usage else None

    def events(self, stream: ChatStream, events: list[Event]) -> bytes:
        try:
            out = [self.translate(name, payload) for _, name, payload in events]
        except (AttributeError, TypeError, ValueError):
            # a field of the wrong JSON type in an upstream event
            raise not_a_stream("a malformed Anthropic event") from None
        stream.usage = self.usage()
        return b"".join(out)

    def end(self, stream: ChatStream, answer: JSON | None) -> bytes:
        if answer is None:
            raise UpstreamError("Anthropic stream ended before message_stop", retryable=True)
        # The upstream ignored `stream` and answered with a whole message.
        if answer.get("type") != "message":
            raise not_a_stream("JSON that is not a message")
        converted = to_openai(answer)
        stream.usage = Usage.from_openai(converted["usage"])
        return b"".join(completion_chunks(converted, stream.usage if self.include_usage else None))

    def _chunk(self, delta: JSON, finish_reason: str | None = None) -> bytes:
        return sse_event(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
        )

    def translate(self, name: str | None, data: bytes) -> bytes:
        try:
            event: Any = loads(data) if data else {}
        except ValueError:
            return b""
        if not isinstance(event, dict):
            return b""
        kind = event.get("type") or name
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                return self._chunk({"content": delta["text"]})
            return b""
        if kind == "message_start":
            message = event.get("message") or {}
            self.id = f"chatcmpl-{message.get('id', '')}"
            self.model = message.get("model", "")
            self.raw_usage.update(message.get("usage") or {})
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "message_delta":
            # message_delta carries cumulative counts, so overwrite rather than add.
            self.raw_usage.update(event.get("usage") or {})
            reason = (event.get("delta") or {}).get("stop_reason")
            return self._chunk({}, FINISH_REASONS.get(reason or "", "stop"))
        if kind == "message_stop":
            self.finished = True
            return self._usage_chunk() + SSE_DONE
        if kind == "error":
            err = event.get("error")
            err = err if isinstance(err, dict) else {}
            raise UpstreamError(
                summary(err.get("message")) or "Anthropic stream error",
                status=_ERROR_EVENT_STATUS.get(str(err.get("type")), 500),
            )
        return b""  # ping, content_block_start/stop, thinking deltas

    def _usage_chunk(self) -> bytes:
        if not self.include_usage:
            return b""
        usage = self.usage() or Usage()
        return sse_event(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage.to_openai(),
            }
        )
