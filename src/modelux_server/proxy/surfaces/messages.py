"""`POST /v1/messages`: the Anthropic Messages API, for any vendor behind the gateway.

The official `anthropic` SDK works unchanged with `base_url` set to the gateway
and a project key as its `api_key` (sent as `x-api-key`; `Authorization: Bearer`
works too). `anthropic-version` is accepted and not required.

Translated: `system` (a string or text blocks), `messages` with text blocks and
image blocks (base64 or URL), `max_tokens` (required, as at Anthropic),
`stop_sequences` (chat `stop`), `temperature`, `top_p`, `metadata.user_id`
(chat `user`) and `stream`. The answer is a Message with one text block; a
stream sends `message_start`, `content_block_start`, `ping`, `text_delta`s,
`content_block_stop`, `message_delta` (stop reason and usage) and
`message_stop`, or an `error` event when the upstream's stream broke off.
`top_k` and `thinking` are ignored; tools, tool results, documents and thinking
blocks are refused with 422 `unsupported_parameter`.

Mapping back: finish reason `length` is `max_tokens`, `content_filter` is
`refusal`, anything else `end_turn`. The chat format does not say whether a
stop sequence ended the answer, so `stop_sequence` is never reported.
`input_tokens` excludes cached tokens, reported as `cache_read_input_tokens`,
as Anthropic counts them. A stream's `message_start` reports 0 input tokens:
chat streams give usage only at the end, and `message_delta` carries it.

Errors come in Anthropic's shape (`{"type": "error", "error": {"type", "message"}}`)
with the gateway's own fields kept inside `error` (`code`, `param`, and
`details.error_code`, which the SDK exposes as `error_code`), and the same HTTP
status as on every other surface. The request id is also sent as `request-id`,
where the SDK reads it. Errors raised before a route is reached (a body over the
size limit, a non-JSON content type, an unknown path) keep the OpenAI shape.

When the route's upstream is Anthropic itself, the request goes Anthropic ->
OpenAI chat -> Anthropic (the adapter, providers/anthropic.py) and back the same
way. That round trip keeps everything this surface translates; it is the price
of one pipeline for every surface.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Message, Receive, Scope, Send

from modelux_server.kit.ids import new_id
from modelux_server.proxy.asgi import header
from modelux_server.proxy.codec import dumps, loads
from modelux_server.proxy.surfaces.chat import (
    JSON,
    Tokens,
    answer_model,
    choices,
    copy_fields,
    first_choice,
    is_int,
    missing,
    streaming,
    unsupported,
    wrong,
)
from modelux_server.proxy.surfaces.pipeline import Surface, serve

STOP_REASONS = {"length": "max_tokens", "content_filter": "refusal", "tool_calls": "tool_use"}

# HTTP status -> Anthropic's error type (what its SDKs and clients branch on)
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def _name(value: object) -> str:
    return str(value)[:40]


def to_chat(request: JSON) -> JSON:
    """A Messages request as a chat body; raises ModeluxError for what it cannot carry."""
    limit = request.get("max_tokens")
    if limit is None:
        raise missing("max_tokens")
    if not is_int(limit) or limit < 1:
        raise wrong("max_tokens", "an integer >= 1")
    if request.get("tools") or request.get("mcp_servers"):
        raise unsupported(
            "tools",
            "Tools are not supported on /v1/messages; /v1/chat/completions passes them "
            "to OpenAI-compatible upstreams.",
        )
    messages = _system(request.get("system"))
    given = request.get("messages")
    if not isinstance(given, list) or not given:
        raise wrong("messages", "a non-empty list")
    messages.extend(_message(m, f"messages[{i}]") for i, m in enumerate(given))
    body: JSON = {"model": request["model"], "messages": messages, "max_tokens": limit}
    copy_fields(request, body, ("temperature", "top_p"))
    stops = request.get("stop_sequences")
    if stops is not None:
        if not (isinstance(stops, list) and all(isinstance(s, str) for s in stops)):
            raise wrong("stop_sequences", "a list of strings")
        if stops:
            body["stop"] = stops
    user = _user(request.get("metadata"))
    if user is not None:
        body["user"] = user
    streaming(request, body)
    return body


def _system(system: object) -> list[JSON]:
    if system is None or system == "":
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    if not isinstance(system, list):
        raise wrong("system", "a string or a list of text blocks")
    texts = [_text_block(block, f"system[{i}]") for i, block in enumerate(system)]
    return [{"role": "system", "content": "\n\n".join(texts)}] if texts else []


def _text_block(block: object, where: str) -> str:
    if not isinstance(block, dict) or block.get("type") != "text":
        raise wrong(where, "a text block")
    text = block.get("text")
    if not isinstance(text, str):
        raise wrong(f"{where}.text", "a string")
    return text


def _message(message: object, where: str) -> JSON:
    if not isinstance(message, dict):
        raise wrong(where, "an object")
    role = message.get("role")
    if role not in ("user", "assistant"):
        raise wrong(f"{where}.role", "'user' or 'assistant'")
    content = message.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise wrong(f"{where}.content", "a string or a list of content blocks")
    parts = [_part(block, f"{where}.content[{j}]") for j, block in enumerate(content)]
    if all(p["type"] == "text" for p in parts):
        # plain text travels as a string: every OpenAI-compatible server takes that
        return {"role": role, "content": "".join(p["text"] for p in parts)}
    return {"role": role, "content": parts}


def _part(block: object, where: str) -> JSON:
    if not isinstance(block, dict):
        raise wrong(where, "an object")
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": _text_block(block, where)}
    if kind == "image":
        return {"type": "image_url", "image_url": {"url": _image_url(block.get("source"), f"{where}.source")}}
    raise unsupported(
        where,
        f"Content blocks of type '{_name(kind)}' are not supported on /v1/messages; "
        "text and image blocks are.",
    )


def _image_url(source: object, where: str) -> str:
    if isinstance(source, dict):
        if source.get("type") == "base64":
            media, data = source.get("media_type"), source.get("data")
            if isinstance(media, str) and isinstance(data, str):
                return f"data:{media};base64,{data}"
        if source.get("type") == "url" and isinstance(source.get("url"), str):
            return str(source["url"])
    raise wrong(where, "a base64 source (media_type, data) or a url source")


def _user(metadata: object) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise wrong("metadata", "an object")
    user = metadata.get("user_id")
    if user is not None and not isinstance(user, str):
        raise wrong("metadata.user_id", "a string")
    return user


def _stop_reason(finish_reason: str | None) -> str:
    return STOP_REASONS.get(finish_reason or "", "end_turn")


def _usage(tokens: Tokens | None) -> JSON:
    tokens = tokens or Tokens()
    return {
        "input_tokens": max(0, tokens.prompt - tokens.cached),
        "output_tokens": tokens.completion,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": tokens.cached,
    }


def to_message(chat: JSON, request: JSON) -> JSON:
    """A `chat.completion` as an Anthropic Message."""
    choice = first_choice(chat)
    return {
        "id": new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": answer_model(chat, request["model"]),
        "content": [{"type": "text", "text": choice.text or choice.refusal}],
        "stop_reason": _stop_reason(choice.finish_reason),
        "stop_sequence": None,
        "usage": _usage(Tokens.read(chat.get("usage"))),
    }


def _event(kind: str, **fields: Any) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + dumps({"type": kind, **fields}) + b"\n\n"


class MessageStream:
    """Chat chunks as Anthropic stream events, for one text block."""

    def __init__(self, request: JSON) -> None:
        self.model = request["model"]
        self.usage: Tokens | None = None
        self.finish_reason: str | None = None

    def start(self) -> bytes:
        message = {
            "id": new_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _usage(None),
        }
        return b"".join(
            (
                _event("message_start", message=message),
                _event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
                _event("ping"),
            )
        )

    def chunk(self, chunk: JSON) -> bytes:
        self.usage = Tokens.read(chunk.get("usage")) or self.usage
        out: list[bytes] = []
        for choice in choices(chunk, "delta"):
            if choice.index != 0:
                continue
            text = choice.text or choice.refusal
            if text:
                out.append(_event("content_block_delta", index=0, delta={"type": "text_delta", "text": text}))
            self.finish_reason = choice.finish_reason or self.finish_reason
        return b"".join(out)

    def done(self) -> bytes:
        delta = {"stop_reason": _stop_reason(self.finish_reason), "stop_sequence": None}
        return b"".join(
            (
                _event("content_block_stop", index=0),
                _event("message_delta", delta=delta, usage=_usage(self.usage)),
                _event("message_stop"),
            )
        )

    def failed(self, error: JSON) -> bytes:
        return _event("error", error=anthropic_error(502, error))


def anthropic_error(status: int, error: JSON) -> JSON:
    """The contract's `error` object in Anthropic's terms, the gateway's fields kept."""
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    out = {**error, "type": kind, "message": str(error.get("message") or "")}
    code = error.get("code")
    if isinstance(code, str):
        out["details"] = {"error_code": code}
    return out


def _anthropic_body(status: int, raw: bytes) -> bytes:
    try:
        body = loads(raw)
    except ValueError:
        return raw
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return raw
    rest = {k: v for k, v in body.items() if k != "error"}  # e.g. a budget refusal's `budget`
    return dumps({"type": "error", "error": anthropic_error(status, body["error"]), **rest})


def anthropic_send(send: Send) -> Send:
    """`send` that turns error answers into Anthropic's shape and adds `request-id`.

    The pipeline's error answer (`ProxyCall.fail`) is written in the contract's
    shape; rewriting it on the way out keeps one place that decides statuses,
    headers and the request log for every surface.
    """
    held: Message | None = None
    parts: list[bytes] = []

    async def sending(message: Message) -> None:
        nonlocal held
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            for name, value in headers:
                if name == b"x-modelux-request-id":
                    headers.append((b"request-id", value))
                    break
            message = {**message, "headers": headers}
            if message["status"] >= 400:
                held = message  # sent with the body, whose length changes
                return
        elif held is not None and message["type"] == "http.response.body":
            parts.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = _anthropic_body(held["status"], b"".join(parts))
            headers = [(k, v) for k, v in held["headers"] if k != b"content-length"]
            headers.append((b"content-length", b"%d" % len(body)))
            await send({**held, "headers": headers})
            message = {"type": "http.response.body", "body": body}
        await send(message)

    return sending


class Messages(Surface):
    endpoint = "messages"

    def authorization(self, scope: Scope) -> str | None:
        if header(scope, b"authorization") is not None:
            return None
        key = header(scope, b"x-api-key")
        return f"Bearer {key}" if key is not None else None

    def sending(self, send: Send) -> Send:
        return anthropic_send(send)

    def to_chat(self, request: JSON) -> JSON:
        return to_chat(request)

    def answer(self, chat: JSON, request: JSON) -> JSON:
        return to_message(chat, request)

    def renderer(self, request: JSON) -> MessageStream:
        return MessageStream(request)


SURFACE = Messages()


async def create(scope: Scope, receive: Receive, send: Send) -> None:
    await serve(SURFACE, scope, receive, send)
