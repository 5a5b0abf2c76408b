"""What a `/v1` body must be before it is admitted.

Everything a caller can get wrong is refused here, before the request is
counted or an upstream called: a body that is not a JSON object or nests too
deep (400), a `model` that cannot be routed or put in a log row and a header
(400 `invalid_model`), and the standard OpenAI parameters with the wrong JSON
type (422). The adapters rely on those types when they translate a request, so
a wrong one would otherwise fail inside, after admission. Parameters this
module does not name pass through to the upstream untouched.
"""

from __future__ import annotations

import math
from typing import Any

from modelux_server.errors import BadRequest, ValidationFailed
from modelux_server.kit.json_depth import too_deep, too_deep_message
from modelux_server.kit.model_names import model_name_problem
from modelux_server.proxy.codec import loads

_NUMBERS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")
_INTEGERS = ("max_tokens", "max_completion_tokens", "n", "seed", "top_logprobs")
_BOOLEANS = ("stream", "logprobs", "parallel_tool_calls")
_OBJECTS = ("stream_options", "response_format", "logit_bias", "metadata")
_STRINGS = ("user",)
_LISTS_OF_OBJECTS = ("tools", "functions")


def parse_body(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object with a routable ``model``."""
    if too_deep(raw):
        raise BadRequest(too_deep_message(), code="body_too_deep")
    try:
        body = loads(raw)
    except ValueError:  # UnicodeDecodeError included
        raise BadRequest("The body is not valid JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.", code="invalid_json")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ValidationFailed(
            "'model' is required and must be a string.", code="missing_field", param="model"
        )
    problem = model_name_problem(model)
    if problem is not None:
        raise BadRequest(f"'model' {problem}.", code="invalid_model", param="model")
    return body


def check_chat(body: dict[str, Any]) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValidationFailed("'messages' must be a non-empty list.", code="missing_field", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ValidationFailed(
                f"messages[{i}] needs a 'role'.", code="invalid_field", param=f"messages[{i}]"
            )
        content = message.get("content")
        if not (
            content is None
            or isinstance(content, str)
            or (isinstance(content, list) and all(isinstance(part, dict) for part in content))
        ):
            _wrong(f"messages[{i}].content", "a string or a list of content parts")
    for name in _NUMBERS:
        value = body.get(name)
        if value is not None and not (_is_number(value) and math.isfinite(value)):
            _wrong(name, "a number")
    for name in _INTEGERS:
        value = body.get(name)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool)):
            _wrong(name, "an integer")
    _check_types(body, _BOOLEANS, bool, "true or false")
    _check_types(body, _OBJECTS, dict, "an object")
    _check_types(body, _STRINGS, str, "a string")
    for name in _LISTS_OF_OBJECTS:
        value = body.get(name)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
            _wrong(name, "a list of objects")
    stop = body.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        _wrong("stop", "a string or a list of strings")
    choice = body.get("tool_choice")
    if choice is not None and not isinstance(choice, str | dict):
        _wrong("tool_choice", "a string or an object")


def check_embeddings(body: dict[str, Any]) -> None:
    if "input" not in body:
        raise ValidationFailed("'input' is required.", code="missing_field", param="input")
    given = body["input"]
    # Token arrays can be long: only the top level is looked at, the upstream checks the rest.
    if not (isinstance(given, str) or (isinstance(given, list) and all(_is_input(i) for i in given))):
        _wrong("input", "a string, a list of strings or a list of token arrays")
    dimensions = body.get("dimensions")
    if dimensions is not None and not (isinstance(dimensions, int) and not isinstance(dimensions, bool)):
        _wrong("dimensions", "an integer")
    _check_types(body, ("encoding_format", "user"), str, "a string")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_input(item: object) -> bool:
    return isinstance(item, str | list) or (isinstance(item, int) and not isinstance(item, bool))


def _check_types(body: dict[str, Any], names: tuple[str, ...], kind: type, described: str) -> None:
    for name in names:
        value = body.get(name)
        if value is not None and not isinstance(value, kind):
            _wrong(name, described)


def _wrong(param: str, expected: str) -> None:
    raise ValidationFailed(f"'{param}' must be {expected}.", code="invalid_field", param=param)
