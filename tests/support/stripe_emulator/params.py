"""Decode Stripe's form encoding and validate it against the SDK's own TypedDicts.

Stripe rejects any parameter it does not know; a permissive fake would let an adapter
ship a request that only fails in production. The stripe-python package is generated
from Stripe's OpenAPI spec and carries one TypedDict per endpoint
(``stripe.params.SubscriptionUpdateParams`` ...), so walking the decoded body against
that TypedDict gives us Stripe's parameter surface for the pinned SDK version for free.
"""

from __future__ import annotations

import decimal
import functools
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union

from stripe._request_options import RequestOptions
from stripe._stripe_context import StripeContext
from stripe._stripe_object import UntypedStripeObject
from typing_extensions import is_typeddict

from .errors import StripeApiError

# Keys of RequestOptions are SDK-side options (api_key, idempotency_key...) that the SDK
# strips before encoding; they are never valid on the wire.
_REQUEST_OPTION_KEYS = frozenset(RequestOptions.__annotations__)
# Names that the SDK's params modules only import under TYPE_CHECKING; TypedDict
# inheritance makes get_type_hints resolve them in the subclass module's namespace.
_HINT_NAMESPACE = {"StripeContext": StripeContext, "Mapping": typing.Mapping}
_INT_RE = re.compile(r"^-?\d+$")


# --------------------------------------------------------------------------- decoding


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Turn ``[("a[b][0][c]", "v"), ("expand[]", "x")]`` into nested dicts.

    Array indexes stay dict keys ("0", "1"...) here; the validator turns them into lists
    once it knows the declared type. ``x[]`` appends, as Stripe accepts both spellings.
    """
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        parts = _split_key(raw_key)
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":
                # "x[]" style: append to a list stored under an auto index.
                part = str(len(node))
            if not isinstance(node, dict):
                raise StripeApiError(f"Invalid value for {raw_key}", param=raw_key)
            if last:
                if isinstance(node.get(part), dict):
                    raise StripeApiError(f"Invalid value for {raw_key}", param=raw_key)
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise StripeApiError(f"Invalid value for {raw_key}", param=raw_key)
                node = child
    return root


def _split_key(key: str) -> list[str]:
    head, _, rest = key.partition("[")
    if not rest:
        return [head]
    return [head] + rest.rstrip("]").split("][")


def param_name(path: tuple[str, ...]) -> str:
    return path[0] + "".join(f"[{p}]" for p in path[1:]) if path else ""


# ------------------------------------------------------------------------- validation


@functools.cache
def _hints(td: type) -> dict[str, Any]:
    hints = typing.get_type_hints(td, localns=_HINT_NAMESPACE)
    return {k: v for k, v in hints.items() if k not in _REQUEST_OPTION_KEYS}


def validate(data: dict[str, Any], schema: type) -> dict[str, Any]:
    """Validate decoded params and return them coerced to Python types."""
    return _coerce_typeddict(data, schema, ())


def _coerce(value: Any, tp: Any, path: tuple[str, ...]) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Union or origin is types.UnionType:
        return _coerce_union(value, typing.get_args(tp), path)
    if origin is Literal:
        return _coerce_literal(value, typing.get_args(tp), path)
    if is_typeddict(tp):
        return _coerce_typeddict(value, tp, path)
    if origin in (list, typing.List):  # noqa: UP006 - matching the SDK's annotations
        return _coerce_list(value, typing.get_args(tp)[0], path)
    if origin in (dict, Mapping) or origin is UntypedStripeObject:
        return _coerce_mapping(value, typing.get_args(tp)[-1], path)
    if tp is type(None):
        raise StripeApiError(f"Invalid value for {param_name(path)}", param=param_name(path))
    if tp is str or tp is StripeContext:
        return _scalar(value, path)
    if tp is bool:
        text = _scalar(value, path)
        if text not in ("true", "false"):
            raise StripeApiError(
                f"Invalid boolean: {text}", param=param_name(path), code="parameter_invalid_boolean"
            )
        return text == "true"
    if tp is int:
        text = _scalar(value, path)
        if not _INT_RE.match(text):
            raise StripeApiError(
                f"Invalid integer: {text}", param=param_name(path), code="parameter_invalid_integer"
            )
        return int(text)
    if tp in (float, decimal.Decimal):
        text = _scalar(value, path)
        try:
            return decimal.Decimal(text) if tp is decimal.Decimal else float(text)
        except (ValueError, decimal.InvalidOperation):
            raise StripeApiError(
                f"Invalid decimal: {text}", param=param_name(path), code="parameter_invalid_float"
            ) from None
    raise AssertionError(f"unsupported annotation {tp!r} at {param_name(path)}")


def _scalar(value: Any, path: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise StripeApiError(
            f"Invalid string: {param_name(path)} must be a string, not an object or array",
            param=param_name(path),
        )
    return value


def _coerce_literal(value: Any, allowed: tuple[Any, ...], path: tuple[str, ...]) -> Any:
    text = _scalar(value, path)
    for option in allowed:
        wire = str(option).lower() if isinstance(option, bool) else str(option)
        if text == wire:
            return option
    raise _enum_error(text, allowed, path)


def _enum_error(text: str, allowed: tuple[Any, ...], path: tuple[str, ...]) -> StripeApiError:
    name = param_name(path)
    options = [str(o) for o in allowed if o != ""]
    if not options:  # `Literal[""]` alone: only the empty string (unset) is allowed
        return StripeApiError(
            f"Invalid {name}: must be an empty string", param=name, code="parameter_invalid_string"
        )
    listed = ", ".join(options[:-1]) + (", or " if len(options) > 1 else "") + options[-1]
    return StripeApiError(
        f"Invalid {name}: must be one of {listed}",
        param=name,
        code="parameter_invalid_string",
    )


def _coerce_union(value: Any, options: tuple[Any, ...], path: tuple[str, ...]) -> Any:
    literal_values = [v for o in options if typing.get_origin(o) is Literal for v in typing.get_args(o)]
    # The generator adds "|str" to every enum for forward compatibility, but the server
    # still enforces the enum. Only "Literal['']|str" (empty string = unset) is free text.
    if any(v != "" for v in literal_values):
        options = tuple(o for o in options if o is not str)
    errors: list[tuple[StripeApiError, Any]] = []
    for option in options:
        try:
            return _coerce(value, option, path)
        except StripeApiError as exc:
            errors.append((exc, option))
    # Report the error of the alternative matching the value's shape: a nested unknown
    # key is more useful than "expected a string".
    if isinstance(value, dict):
        for error, option in errors:
            if _is_container(option):
                raise error
    if isinstance(value, str) and any(typing.get_origin(o) is Literal for _, o in errors):
        scalar_types = [o for _, o in errors if typing.get_origin(o) is not Literal]
        if all(_is_container(o) for o in scalar_types):
            raise _enum_error(value, tuple(literal_values), path)
    raise errors[-1][0]


def _is_container(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return is_typeddict(tp) or origin in (list, dict, Mapping) or origin is UntypedStripeObject


def _coerce_list(value: Any, item_tp: Any, path: tuple[str, ...]) -> list[Any]:
    if not isinstance(value, dict) or not all(_INT_RE.match(k) for k in value):
        raise StripeApiError(f"Invalid array: {param_name(path)} must be an array", param=param_name(path))
    ordered = sorted(value.items(), key=lambda kv: int(kv[0]))
    return [_coerce(v, item_tp, (*path, str(i))) for i, (_, v) in enumerate(ordered)]


def _coerce_mapping(value: Any, value_tp: Any, path: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StripeApiError(f"Invalid object: {param_name(path)} must be an object", param=param_name(path))
    return {k: _coerce(v, value_tp, (*path, k)) for k, v in value.items()}


def _coerce_typeddict(value: Any, td: type, path: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StripeApiError(f"Invalid object: {param_name(path)} must be an object", param=param_name(path))
    hints = _hints(td)
    out: dict[str, Any] = {}
    for key, raw in value.items():
        if key not in hints:
            name = param_name((*path, key))
            raise StripeApiError(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")
        out[key] = _coerce(raw, hints[key], (*path, key))
    for key in sorted(td.__required_keys__ - _REQUEST_OPTION_KEYS):  # type: ignore[attr-defined]
        if key not in value:
            name = param_name((*path, key))
            raise StripeApiError(f"Missing required param: {name}.", param=name, code="parameter_missing")
    return out
