"""Adapter for Google's Gemini API (generateContent), translating to and from OpenAI.

Request mapping: system/developer messages -> ``systemInstruction``; ``user`` stays,
``assistant`` becomes ``model`` (consecutive same-role turns are merged); text parts
-> ``text``, ``data:`` image URLs -> ``inlineData``; ``max_tokens`` /
``max_completion_tokens`` -> ``maxOutputTokens``, ``temperature``, ``top_p`` ->
``topP``, ``stop`` -> ``stopSequences``, ``n`` -> ``candidateCount``, ``seed``, and
``response_format: json_object`` -> ``responseMimeType: application/json``.

Not translated: tool calling and remote image URLs (Gemini only reads its own file
URIs) are refused with a non-retryable 400 rather than silently dropped.

Answers: ``candidates[].content.parts[].text`` (thought parts left out),
``finishReason`` mapped to OpenAI's, ``usageMetadata`` to usage (thinking tokens
count as completion tokens, as OpenAI counts reasoning). Streams use
``:streamGenerateContent?alt=sse``, whose events are whole responses and which ends
by closing: ``[DONE]`` is added at the end. Embeddings use ``:embedContent`` for one
input and ``:batchEmbedContents`` for a list; Gemini reports no token counts for them.
"""

# The contract passes `timeout` explicitly: adapters apply it per HTTP phase and
# as an overall deadline, which an outer asyncio.timeout alone cannot express.
# ruff: noqa: ASYNC109

from __future__ import annotations

import base64
import struct
import time
from typing import Any
from urllib.parse import quote

from modelux_server.provider import vendors

from ..codec import loads
from ._http import SSE_DONE, HttpClient, post_json, sse_event
from ._stream import Event, completion_chunks, not_a_stream, open_stream, stream_error
from .base import (
    JSON,
    ChatStream,
    UpstreamCredential,
    UpstreamError,
    UpstreamResponse,
    Usage,
    inline_image,
    unsupported,
)

DEFAULT_BASE_URL = vendors.BY_ID["google"].default_base_url or ""

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}


def _image_part(part: JSON) -> JSON:
    mime_type, data = inline_image(part, "Gemini")
    return {"inlineData": {"mimeType": mime_type, "data": data}}


def _parts(content: Any) -> list[JSON]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[JSON] = []
    for part in content or []:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"text": str(part.get("text", ""))})
        elif kind == "image_url":
            parts.append(_image_part(part))
        else:
            raise unsupported(f"content part type {kind!r} is not supported for Gemini")
    return parts


def _generation_config(body: JSON) -> JSON:
    config: JSON = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        config["maxOutputTokens"] = max_tokens
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed")):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if (body.get("n") or 1) > 1:
        config["candidateCount"] = body["n"]
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_object":
        config["responseMimeType"] = "application/json"
    return config


def to_gemini(body: JSON) -> JSON:
    """Translate an OpenAI chat request into a Gemini ``GenerateContentRequest``."""
    if body.get("tools") or body.get("functions"):
        raise unsupported("tool calling is not supported for Gemini models yet")
    system: list[JSON] = []
    contents: list[JSON] = []
    for msg in body.get("messages") or []:
        role = msg.get("role") if isinstance(msg, dict) else None
        if role in ("system", "developer"):
            system.extend(_parts(msg.get("content")))
            continue
        if role not in ("user", "assistant") or msg.get("tool_calls"):
            raise unsupported(f"{role!r} messages and tool calls are not supported for Gemini")
        theirs = "model" if role == "assistant" else "user"
        parts = _parts(msg.get("content"))
        if contents and contents[-1]["role"] == theirs:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": theirs, "parts": parts})
    out: JSON = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    config = _generation_config(body)
    if config:
        out["generationConfig"] = config
    return out


def usage_from_gemini(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    try:
        prompt = int(raw.get("promptTokenCount") or 0)
        completion = int(raw.get("candidatesTokenCount") or 0) + int(raw.get("thoughtsTokenCount") or 0)
        total = int(raw.get("totalTokenCount") or prompt + completion)
    except (TypeError, ValueError):  # an upstream's malformed counts are not our failure
        return None
    return Usage(prompt, completion, total)


def _text(candidate: JSON) -> str:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return "".join(
        p["text"]
        for p in (parts if isinstance(parts, list) else [])
        if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")
    )


def _finish(candidate: JSON) -> str | None:
    reason = candidate.get("finishReason")
    if not reason or reason == "FINISH_REASON_UNSPECIFIED":
        return None
    return FINISH_REASONS.get(str(reason), "stop")


def _candidates(answer: JSON) -> list[JSON]:
    candidates = answer.get("candidates")
    if isinstance(candidates, list) and candidates:
        return [c for c in candidates if isinstance(c, dict)]
    if isinstance(answer.get("promptFeedback"), dict) and answer["promptFeedback"].get("blockReason"):
        # the prompt itself was blocked: no candidate, an empty filtered answer
        return [{"finishReason": "SAFETY"}]
    return []


def to_openai(answer: JSON, model: str) -> JSON:
    """Translate a ``GenerateContentResponse`` into an OpenAI ``chat.completion``."""
    choices = [
        {
            "index": c.get("index", position),
            "message": {"role": "assistant", "content": _text(c)},
            "logprobs": None,
            "finish_reason": _finish(c) or "stop",
        }
        for position, c in enumerate(_candidates(answer))
    ]
    if not choices:
        raise UpstreamError("Gemini answered without a candidate", status=502, retryable=True)
    return {
        "id": f"chatcmpl-{answer.get('responseId', '')}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer.get("modelVersion") or model,
        "choices": choices,
        "usage": (usage_from_gemini(answer.get("usageMetadata")) or Usage()).to_openai(),
    }


def _model_path(model: str) -> str:
    # `models/x` and `tunedModels/x` name themselves; the rest is one path segment
    for kind in ("models/", "tunedModels/"):
        if model.startswith(kind):
            return kind + quote(model.removeprefix(kind), safe="")
    return "models/" + quote(model, safe="")


def _url(credential: UpstreamCredential, model: str, method: str) -> str:
    base = (credential.base_url or DEFAULT_BASE_URL).rstrip("/")
    # A credential saved for Gemini's OpenAI-compatible endpoint (`.../v1beta/openai`)
    # keeps working: the native API lives under the same version root.
    base = base.removesuffix("/openai")
    return f"{base}/{_model_path(model)}:{method}"


def _float32_base64(values: list[float]) -> str:
    # what OpenAI sends for `encoding_format: base64` (the openai SDK's default)
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")


def _embedding_inputs(body: JSON) -> list[str]:
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
        raise unsupported("Gemini embeddings take a string or a list of strings (not token ids)")
    return inputs


class GeminiProvider:
    name = "gemini"

    def __init__(self, client: HttpClient) -> None:
        self._client = client

    def _headers(self, credential: UpstreamCredential) -> dict[str, str]:
        return {"x-goog-api-key": credential.api_key}

    async def chat(
        self, body: JSON, *, model: str, credential: UpstreamCredential, timeout: float
    ) -> UpstreamResponse:
        status, answer, _raw = await post_json(
            self._client,
            _url(credential, model, "generateContent"),
            headers=self._headers(credential),
            payload=to_gemini(body),
            timeout=timeout,
        )
        converted = to_openai(answer, model)
        return UpstreamResponse(status, converted, Usage.from_openai(converted["usage"]))

    async def chat_stream(
        self, body: JSON, *, model: str, credential: UpstreamCredential, timeout: float
    ) -> ChatStream:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return await open_stream(
            self._client,
            _url(credential, model, "streamGenerateContent") + "?alt=sse",
            headers=self._headers(credential),
            payload=to_gemini(body),
            timeout=timeout,
            translation=_StreamState(model, include_usage),
        )

    async def embeddings(
        self, body: JSON, *, model: str, credential: UpstreamCredential, timeout: float
    ) -> UpstreamResponse:
        inputs = _embedding_inputs(body)
        extra: JSON = {}
        if body.get("dimensions"):
            extra["outputDimensionality"] = body["dimensions"]
        if isinstance(body.get("input"), str):
            method, payload = "embedContent", {"content": {"parts": [{"text": inputs[0]}]}, **extra}
        else:
            name = _model_path(model)
            requests = [{"model": name, "content": {"parts": [{"text": i}]}, **extra} for i in inputs]
            method, payload = "batchEmbedContents", {"requests": requests}
        status, answer, _raw = await post_json(
            self._client,
            _url(credential, model, method),
            headers=self._headers(credential),
            payload=payload,
            timeout=timeout,
        )
        found = answer.get("embeddings") if method == "batchEmbedContents" else [answer.get("embedding")]
        vectors = [
            e["values"]
            for e in (found if isinstance(found, list) else [])
            if isinstance(e, dict) and isinstance(e.get("values"), list)
        ]
        if len(vectors) != len(inputs):
            raise UpstreamError("Gemini answered without the embeddings asked for", status=502)
        as_base64 = body.get("encoding_format") == "base64"
        usage = usage_from_gemini(answer.get("usageMetadata"))  # absent today: None, not zero
        tokens = usage.prompt_tokens if usage else 0
        converted = {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": _float32_base64(v) if as_base64 else v}
                for i, v in enumerate(vectors)
            ],
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return UpstreamResponse(status, converted, usage)


class _StreamState:
    """Turns Gemini's streamed responses into OpenAI ``chat.completion.chunk`` SSE bytes."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.finished = False  # Gemini has no end marker: the body just ends
        self.id = "chatcmpl-"
        self.model = model
        self.created = int(time.time())
        self.started: set[int] = set()  # candidates whose role chunk went out
        self.done: set[int] = set()  # candidates whose finish chunk went out

    def events(self, stream: ChatStream, events: list[Event]) -> bytes:
        out: list[bytes] = []
        for _, _, payload in events:
            try:
                answer: Any = loads(payload)
            except ValueError:
                raise not_a_stream("an event whose data is not JSON") from None
            if not isinstance(answer, dict):
                raise not_a_stream("an event that is not a JSON object")
            if "error" in answer:
                raise stream_error(payload, "Gemini reported an error mid-stream")
            try:
                out.append(self._translate(stream, answer))
            except (AttributeError, TypeError, ValueError):
                # a field of the wrong JSON type in an upstream event
                raise not_a_stream("a malformed Gemini event") from None
        return b"".join(out)

    def _translate(self, stream: ChatStream, answer: JSON) -> bytes:
        if answer.get("responseId"):
            self.id = f"chatcmpl-{answer['responseId']}"
        self.model = answer.get("modelVersion") or self.model
        usage = usage_from_gemini(answer.get("usageMetadata"))
        if usage is not None:
            stream.usage = usage  # cumulative: the last one counts
        out: list[bytes] = []
        for position, candidate in enumerate(_candidates(answer)):
            index = candidate.get("index", position)
            index = index if isinstance(index, int) else position
            delta: JSON = {}
            if index not in self.started:
                self.started.add(index)
                delta["role"] = "assistant"
            text = _text(candidate)
            if text or delta:
                delta["content"] = text
                out.append(self._chunk(index, delta))
            finish = _finish(candidate)
            if finish and index not in self.done:
                self.done.add(index)
                out.append(self._chunk(index, {}, finish))
        return b"".join(out)

    def end(self, stream: ChatStream, answer: JSON | None) -> bytes:
        if answer is not None:
            # The upstream answered one whole response instead of a stream.
            converted = to_openai(answer, self.model)
            stream.usage = Usage.from_openai(converted["usage"])
            return b"".join(completion_chunks(converted, stream.usage if self.include_usage else None))
        if not self.done:
            raise UpstreamError("Gemini stream ended before a finish reason", retryable=True)
        return self._usage_chunk(stream) + SSE_DONE

    def _chunk(self, index: int, delta: JSON, finish_reason: str | None = None) -> bytes:
        return sse_event(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [
                    {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
        )

    def _usage_chunk(self, stream: ChatStream) -> bytes:
        if not self.include_usage:
            return b""
        return sse_event(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": (stream.usage or Usage()).to_openai(),
            }
        )
