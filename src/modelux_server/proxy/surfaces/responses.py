"""`POST /v1/responses`: the OpenAI Responses API, answered through chat completions.

Translated: `input` as a string (one user message) or a list of messages (roles
user, assistant, system, developer; content a string or `input_text`,
`output_text` and `refusal` parts), `instructions` (a system message first),
`max_output_tokens` (chat `max_tokens`), `temperature`, `top_p`, `user`,
`text.format` (chat `response_format`), `reasoning.effort` (chat
`reasoning_effort`) and `stream`. `metadata` is echoed. The answer is a Response
holding one assistant message; a stream carries the events the official SDKs
read, numbered by `sequence_number`, from `response.created` to
`response.completed` (or `response.incomplete` when `max_output_tokens` cut the
answer, or `error` then `response.failed` when the upstream's stream broke off).

Refused with 422 `unsupported_parameter` rather than ignored, so no answer
silently skips part of a request: `tools`, input items other than messages
(function calls and their outputs, reasoning items, item references), content
other than text (images, files, audio), stored prompt templates (`prompt`).

There is no payload store, so this surface is stateless: nothing is stored
whatever `store` says (every Response says `"store": false`), there is no
`GET /v1/responses/{id}`, `background` is refused (422), and
`previous_response_id` and `conversation` are answered 400
(`previous_response_not_available`, `conversation_not_available`) with the way
out: send the whole conversation in `input`.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import Receive, Scope, Send

from modelux_server.errors import BadRequest
from modelux_server.kit.ids import new_id
from modelux_server.proxy.codec import dumps
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

_ROLES = ("user", "assistant", "system", "developer")
# content part type -> the field holding its text
_TEXT_PARTS = {"input_text": "text", "output_text": "text", "refusal": "refusal"}


def _name(value: object) -> str:
    """A caller's value quoted in an error message, kept short."""
    return str(value)[:40]


def to_chat(request: JSON) -> JSON:
    """A Responses request as a chat body; raises ModeluxError for what it cannot carry."""
    _refuse_state(request)
    if request.get("tools"):
        raise unsupported(
            "tools",
            "Tools are not supported on /v1/responses; /v1/chat/completions passes them "
            "to OpenAI-compatible upstreams.",
        )
    messages: list[JSON] = []
    instructions = request.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise wrong("instructions", "a string")
        if instructions:
            messages.append({"role": "system", "content": instructions})
    messages.extend(_messages(request.get("input")))
    body: JSON = {"model": request["model"], "messages": messages}
    limit = request.get("max_output_tokens")
    if limit is not None:
        if not is_int(limit) or limit < 1:
            raise wrong("max_output_tokens", "an integer >= 1")
        body["max_tokens"] = limit
    copy_fields(request, body, ("temperature", "top_p", "user"))
    response_format = _response_format(request.get("text"))
    if response_format is not None:
        body["response_format"] = response_format
    effort = _effort(request.get("reasoning"))
    if effort is not None:
        body["reasoning_effort"] = effort
    if request.get("metadata") is not None and not isinstance(request["metadata"], dict):
        raise wrong("metadata", "an object")
    streaming(request, body)
    return body


def _refuse_state(request: JSON) -> None:
    """What needs a stored response or prompt, which this gateway does not keep."""
    if request.get("previous_response_id") is not None:
        raise BadRequest(
            "This gateway stores no responses, so 'previous_response_id' cannot be resolved. "
            "Send the whole conversation in 'input' (the earlier messages and answers included).",
            code="previous_response_not_available",
            param="previous_response_id",
        )
    if request.get("conversation") is not None:
        raise BadRequest(
            "This gateway stores no conversations. Send the whole conversation in 'input'.",
            code="conversation_not_available",
            param="conversation",
        )
    if request.get("prompt") is not None:
        raise unsupported(
            "prompt",
            "Stored prompt templates are not available on this gateway; send the text in "
            "'instructions' and 'input'.",
        )
    if request.get("background"):
        raise unsupported(
            "background",
            "Background responses are polled by id, and this gateway stores no responses. "
            "Send the request without 'background' (or with 'stream': true).",
        )


def _messages(given: object) -> list[JSON]:
    if given is None:
        raise missing("input")
    if isinstance(given, str):
        return [{"role": "user", "content": given}]
    if not isinstance(given, list):
        raise wrong("input", "a string or a list of input items")
    return [_message(item, f"input[{i}]") for i, item in enumerate(given)]


def _message(item: object, where: str) -> JSON:
    if not isinstance(item, dict):
        raise wrong(where, "an object")
    kind = item.get("type", "message")
    if kind != "message":
        raise unsupported(
            where,
            f"Input items of type '{_name(kind)}' are not supported on /v1/responses; "
            "send messages with text content.",
        )
    role = item.get("role")
    if role not in _ROLES:
        raise wrong(f"{where}.role", "'user', 'assistant', 'system' or 'developer'")
    return {"role": role, "content": _content(item.get("content"), f"{where}.content")}


def _content(content: object, where: str) -> str | list[JSON]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise wrong(where, "a string or a list of content parts")
    texts: list[str] = []
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        if not isinstance(part, dict):
            raise wrong(at, "an object")
        kind = part.get("type")
        field = _TEXT_PARTS.get(kind) if isinstance(kind, str) else None
        if field is None:
            raise unsupported(
                at,
                f"Content of type '{_name(kind)}' is not supported on /v1/responses; "
                "only text is (input_text, output_text).",
            )
        text = part.get(field)
        if not isinstance(text, str):
            raise wrong(f"{at}.{field}", "a string")
        texts.append(text)
    if len(texts) == 1:
        return texts[0]
    return [{"type": "text", "text": text} for text in texts]


def _response_format(text: object) -> JSON | None:
    if text is None:
        return None
    if not isinstance(text, dict):
        raise wrong("text", "an object")
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise wrong("text.format", "an object")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise wrong("text.format.type", "'text', 'json_object' or 'json_schema'")


def _effort(reasoning: object) -> str | None:
    if reasoning is None:
        return None
    if not isinstance(reasoning, dict):
        raise wrong("reasoning", "an object")
    effort = reasoning.get("effort")
    if effort is not None and not isinstance(effort, str):
        raise wrong("reasoning.effort", "a string")
    return effort


def _status(finish_reason: str | None) -> tuple[str, str | None]:
    """The Response's status and its incomplete reason, from the chat finish reason."""
    if finish_reason == "length":
        return "incomplete", "max_output_tokens"
    if finish_reason == "content_filter":
        return "incomplete", "content_filter"
    return "completed", None


def _text_part(text: str) -> JSON:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _output_message(item_id: str, status: str, content: list[JSON]) -> JSON:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def _usage(tokens: Tokens) -> JSON:
    return {
        "input_tokens": tokens.prompt,
        "input_tokens_details": {"cached_tokens": tokens.cached, "cache_write_tokens": 0},
        "output_tokens": tokens.completion,
        "output_tokens_details": {"reasoning_tokens": tokens.reasoning},
        "total_tokens": tokens.total,
    }


def response_object(
    request: JSON,
    *,
    response_id: str,
    created: int,
    model: str,
    status: str,
    output: list[JSON],
    usage: Tokens | None,
    incomplete: str | None = None,
    error: JSON | None = None,
) -> JSON:
    """A Response: what the caller asked for echoed, the answer in `output`."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "store": False,
        "temperature": request.get("temperature"),
        "top_p": request.get("top_p"),
        "text": request.get("text") or {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "truncation": "disabled",
        "usage": _usage(usage) if usage is not None else None,
        "user": request.get("user"),
        "metadata": request.get("metadata") or {},
    }


def to_response(chat: JSON, request: JSON) -> JSON:
    """A `chat.completion` as a Response."""
    choice = first_choice(chat)
    status, reason = _status(choice.finish_reason)
    content = [_text_part(choice.text)] if choice.text or not choice.refusal else []
    if choice.refusal:
        content.append({"type": "refusal", "refusal": choice.refusal})
    created = chat.get("created")
    return response_object(
        request,
        response_id=new_id("resp"),
        created=created if is_int(created) else int(time.time()),
        model=answer_model(chat, request["model"]),
        status=status,
        output=[_output_message(new_id("msg"), status, content)],
        usage=Tokens.read(chat.get("usage")),
        incomplete=reason,
    )


class ResponseStream:
    """Chat chunks as Responses stream events, for one message with one text part."""

    def __init__(self, request: JSON) -> None:
        self.request = request
        self.id = new_id("resp")
        self.item_id = new_id("msg")
        self.created = int(time.time())
        self.sequence = 0
        self.text: list[str] = []
        self.usage: Tokens | None = None
        self.finish_reason: str | None = None

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, **fields, "sequence_number": self.sequence}
        self.sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + dumps(payload) + b"\n\n"

    def _response(self, status: str, output: list[JSON], **extra: Any) -> JSON:
        return response_object(
            self.request,
            response_id=self.id,
            created=self.created,
            model=self.request["model"],
            status=status,
            output=output,
            usage=self.usage,
            **extra,
        )

    def _part(self) -> JSON:
        return {"item_id": self.item_id, "output_index": 0, "content_index": 0}

    def start(self) -> bytes:
        return b"".join(
            (
                self._event("response.created", response=self._response("in_progress", [])),
                self._event("response.in_progress", response=self._response("in_progress", [])),
                self._event(
                    "response.output_item.added",
                    output_index=0,
                    item=_output_message(self.item_id, "in_progress", []),
                ),
                self._event("response.content_part.added", **self._part(), part=_text_part("")),
            )
        )

    def chunk(self, chunk: JSON) -> bytes:
        self.usage = Tokens.read(chunk.get("usage")) or self.usage
        out: list[bytes] = []
        for choice in choices(chunk, "delta"):
            if choice.index != 0:
                continue  # one output message: `n` is not a Responses parameter
            if choice.text:
                self.text.append(choice.text)
                out.append(
                    self._event("response.output_text.delta", **self._part(), delta=choice.text, logprobs=[])
                )
            self.finish_reason = choice.finish_reason or self.finish_reason
        return b"".join(out)

    def done(self) -> bytes:
        text = "".join(self.text)
        status, reason = _status(self.finish_reason)
        part = _text_part(text)
        item = _output_message(self.item_id, status, [part])
        last = "response.completed" if status == "completed" else "response.incomplete"
        return b"".join(
            (
                self._event("response.output_text.done", **self._part(), text=text, logprobs=[]),
                self._event("response.content_part.done", **self._part(), part=part),
                self._event("response.output_item.done", output_index=0, item=item),
                self._event(last, response=self._response(status, [item], incomplete=reason)),
            )
        )

    def failed(self, error: JSON) -> bytes:
        message = error.get("message")
        message = message if isinstance(message, str) else "The answer's stream failed."
        item = _output_message(self.item_id, "incomplete", [_text_part("".join(self.text))])
        return b"".join(
            (
                self._event("error", code=error.get("code"), message=message, param=None),
                self._event(
                    "response.failed",
                    response=self._response(
                        "failed", [item], error={"code": "server_error", "message": message}
                    ),
                ),
            )
        )


class Responses(Surface):
    endpoint = "responses"

    def to_chat(self, request: JSON) -> JSON:
        return to_chat(request)

    def answer(self, chat: JSON, request: JSON) -> JSON:
        return to_response(chat, request)

    def renderer(self, request: JSON) -> ResponseStream:
        return ResponseStream(request)


SURFACE = Responses()


async def create(scope: Scope, receive: Receive, send: Send) -> None:
    await serve(SURFACE, scope, receive, send)
