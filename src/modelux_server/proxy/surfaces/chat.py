"""Reading OpenAI chat answers and chunks, and the refusals every surface shares.

The surfaces build a chat body from their own request and get back what the
chat pipeline produces: a `chat.completion` object, or `chat.completion.chunk`
events. An upstream's answer is not trusted to be well formed, so every reader
here falls back to an empty value instead of raising on a missing or mistyped
field: the request was already counted, and a partial answer beats a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeGuard

from modelux_server.errors import ValidationFailed

JSON = dict[str, Any]


def wrong(param: str, expected: str) -> ValidationFailed:
    """A parameter of the wrong JSON type or value (422 `invalid_field`), like `check_chat`'s."""
    return ValidationFailed(f"'{param}' must be {expected}.", code="invalid_field", param=param)


def missing(param: str) -> ValidationFailed:
    return ValidationFailed(f"'{param}' is required.", code="missing_field", param=param)


def unsupported(param: str, message: str) -> ValidationFailed:
    """Something the surface's API has and the gateway cannot translate (422).

    Refused rather than dropped, so a caller never gets an answer that silently
    ignored part of its request (tools, images it meant the model to see).
    """
    return ValidationFailed(message, code="unsupported_parameter", param=param)


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def copy_fields(source: JSON, target: JSON, names: tuple[str, ...]) -> None:
    """Copy the parameters both formats share under the same name (`check_chat` checks them)."""
    for name in names:
        if source.get(name) is not None:
            target[name] = source[name]


def streaming(request: JSON, body: JSON) -> None:
    """Ask for a stream, with the usage chunk every surface's last event reports."""
    if request.get("stream_options") is not None and not isinstance(request["stream_options"], dict):
        raise wrong("stream_options", "an object")
    stream = request.get("stream")
    if stream is None:
        return
    if not isinstance(stream, bool):
        raise wrong("stream", "true or false")
    body["stream"] = stream
    if stream:
        body["stream_options"] = {"include_usage": True}


@dataclass(frozen=True, slots=True)
class Tokens:
    """A chat `usage` object's counts; `cached` is part of `prompt`, `reasoning` of `completion`."""

    prompt: int = 0
    completion: int = 0
    total: int = 0
    cached: int = 0
    reasoning: int = 0

    @classmethod
    def read(cls, usage: object) -> Tokens | None:
        if not isinstance(usage, dict):
            return None
        prompt, completion = _count(usage, "prompt_tokens"), _count(usage, "completion_tokens")
        return cls(
            prompt,
            completion,
            _count(usage, "total_tokens") or prompt + completion,
            _count(usage.get("prompt_tokens_details"), "cached_tokens"),
            _count(usage.get("completion_tokens_details"), "reasoning_tokens"),
        )


def _count(holder: object, name: str) -> int:
    value = holder.get(name) if isinstance(holder, dict) else None
    return value if is_int(value) and value >= 0 else 0


@dataclass(frozen=True, slots=True)
class Choice:
    """One choice of a chat answer, or one choice's delta in a chunk."""

    index: int
    text: str
    refusal: str
    finish_reason: str | None


def choices(answer: JSON, key: str = "message") -> list[Choice]:
    """The choices of a `chat.completion` (`key="message"`) or a chunk (`key="delta"`)."""
    found = answer.get("choices")
    out: list[Choice] = []
    for position, raw in enumerate(found if isinstance(found, list) else []):
        if not isinstance(raw, dict):
            continue
        message = raw.get(key)
        message = message if isinstance(message, dict) else {}
        index = raw.get("index")
        reason = raw.get("finish_reason")
        out.append(
            Choice(
                index if is_int(index) else position,
                _text(message.get("content")),
                _text(message.get("refusal")),
                reason if isinstance(reason, str) else None,
            )
        )
    return out


def first_choice(answer: JSON) -> Choice:
    found = choices(answer)
    return found[0] if found else Choice(0, "", "", None)


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # a message given as content parts
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def answer_model(answer: JSON, requested: str) -> str:
    """The model the upstream says answered, else the one the caller asked for."""
    model = answer.get("model")
    return model if isinstance(model, str) and model else requested
