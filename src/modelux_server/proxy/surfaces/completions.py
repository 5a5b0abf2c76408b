"""`POST /v1/completions`: OpenAI's legacy text completions, answered by a chat model.

The `prompt` (a string, or a list holding one string) becomes one user message;
`max_tokens`, `temperature`, `top_p`, `n`, `stop`, the penalties, `logit_bias`,
`seed`, `user`, `stream` and `stream_options` keep their meaning. The answer is a
`text_completion` whose choices hold each chat choice's text; a stream sends
`text_completion` chunks, the usage chunk when `stream_options.include_usage`
asks for it, and `[DONE]`, or the in-band error event of a chat stream.

A chat model answers a prompt as a message rather than continuing its text,
which is what callers of this surface get from current models anyway (OpenAI
serves it with instruction-tuned models). `max_tokens` is left to the upstream
when absent: the legacy default of 16 would cut a chat model's answers short.

Refused with 422: several prompts or token-array prompts in one request,
`suffix`, `echo`, `logprobs` and `best_of` above 1, which a chat model cannot give.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.types import Receive, Scope, Send

from modelux_server.proxy.codec import dumps
from modelux_server.proxy.providers._http import SSE_DONE, sse_event
from modelux_server.proxy.surfaces.chat import (
    JSON,
    answer_model,
    choices,
    copy_fields,
    is_int,
    missing,
    streaming,
    unsupported,
)
from modelux_server.proxy.surfaces.pipeline import Surface, serve

_SHARED = (
    "max_tokens",
    "temperature",
    "top_p",
    "n",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "seed",
    "user",
)


def to_chat(request: JSON) -> JSON:
    """A completions request as a chat body; raises ModeluxError for what it cannot carry."""
    body: JSON = {"model": request["model"], "messages": [{"role": "user", "content": _prompt(request)}]}
    if request.get("suffix"):
        raise unsupported("suffix", "'suffix' (insertion) is not supported: chat models cannot fill in text.")
    if request.get("echo"):
        raise unsupported("echo", "'echo' is not supported: a chat answer does not repeat the prompt.")
    if request.get("logprobs") is not None:
        raise unsupported("logprobs", "'logprobs' is not supported on /v1/completions.")
    best_of = request.get("best_of")
    if best_of is not None and best_of != 1:
        raise unsupported("best_of", "'best_of' is not supported on /v1/completions.")
    copy_fields(request, body, _SHARED)
    streaming(request, body)
    return body


def _prompt(request: JSON) -> str:
    prompt = request.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if isinstance(prompt, str):
        return prompt
    if prompt is None:
        raise missing("prompt")
    raise unsupported(
        "prompt", "'prompt' must be one string (or a list of one string); send several prompts separately."
    )


def _completion_id(chat: JSON) -> str:
    given = chat.get("id")
    suffix = given.removeprefix("chatcmpl-") if isinstance(given, str) else ""
    return f"cmpl-{suffix or uuid.uuid4().hex}"


def _created(chat: JSON) -> int:
    created = chat.get("created")
    return created if is_int(created) else int(time.time())


def to_completion(chat: JSON, request: JSON) -> JSON:
    """A `chat.completion` as a `text_completion`."""
    answer: JSON = {
        "id": _completion_id(chat),
        "object": "text_completion",
        "created": _created(chat),
        "model": answer_model(chat, request["model"]),
        "choices": [
            {"text": c.text, "index": c.index, "logprobs": None, "finish_reason": c.finish_reason or "stop"}
            for c in choices(chat)
        ],
    }
    if isinstance(chat.get("usage"), dict):
        answer["usage"] = chat["usage"]
    if chat.get("system_fingerprint"):
        answer["system_fingerprint"] = chat["system_fingerprint"]
    return answer


class CompletionStream:
    """Chat chunks as `text_completion` chunks."""

    def __init__(self, request: JSON) -> None:
        options = request.get("stream_options")
        self.include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        self.model = request["model"]
        self.id: str | None = None
        self.created = int(time.time())

    def start(self) -> bytes:
        return b""

    def _chunk(self, choices: list[JSON], **extra: Any) -> bytes:
        return sse_event(
            {
                "id": self.id or _completion_id({}),
                "object": "text_completion",
                "created": self.created,
                "model": self.model,
                "choices": choices,
                **extra,
            }
        )

    def chunk(self, chunk: JSON) -> bytes:
        if self.id is None:
            self.id = _completion_id(chunk)
            self.created = _created(chunk)
            self.model = answer_model(chunk, self.model)
        out = [
            {"text": c.text, "index": c.index, "logprobs": None, "finish_reason": c.finish_reason}
            for c in choices(chunk, "delta")
            if c.text or c.finish_reason
        ]
        if out:
            return self._chunk(out)
        usage = chunk.get("usage")
        if self.include_usage and isinstance(usage, dict):
            return self._chunk([], usage=usage)
        return b""

    def done(self) -> bytes:
        return SSE_DONE

    def failed(self, error: JSON) -> bytes:
        # what a chat stream sends, and the OpenAI SDKs raise as APIError
        return b"data: " + dumps({"error": error}) + b"\n\n"


class Completions(Surface):
    endpoint = "completions"

    def to_chat(self, request: JSON) -> JSON:
        return to_chat(request)

    def answer(self, chat: JSON, request: JSON) -> JSON:
        return to_completion(chat, request)

    def renderer(self, request: JSON) -> CompletionStream:
        return CompletionStream(request)


SURFACE = Completions()


async def create(scope: Scope, receive: Receive, send: Send) -> None:
    await serve(SURFACE, scope, receive, send)
