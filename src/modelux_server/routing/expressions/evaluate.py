"""Services semantics: compiles the AST once into closures evaluated per request."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, TypeAlias

from modelux_server.routing.expressions.nodes import BoolOp, Call, Compare, Const, Node, Not, Path

Context: TypeAlias = Mapping[str, Any]
Evaluator: TypeAlias = Callable[[Context], Any]


def _get(value: Any, key: str) -> Any:
    # Only mappings are traversed: getattr() on arbitrary objects could reach dunders or
    # run property code, which a customer-written rule must never be able to do.
    if type(value) is dict or isinstance(value, Mapping):
        return value.get(key)
    return None


def _is_number(value: Any) -> bool:
    # bool is an int subclass in Python, but true < 2 should not be meaningful in rules.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(a: Any, b: Any) -> bool:
    """Strict equality: no coercion between strings, numbers and booleans."""
    if type(a) is str and type(b) is str:  # the overwhelmingly common case
        return a == b
    if a is None or b is None:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _orderable(a: Any, b: Any) -> bool:
    return (isinstance(a, str) and isinstance(b, str)) or (_is_number(a) and _is_number(b))


def _membership(item: Any, container: Any) -> bool | None:
    """``item in container``, or None when the operand types make the question meaningless."""
    if isinstance(container, list | tuple):
        return any(_equal(item, candidate) for candidate in container)
    if not isinstance(item, str):
        return None
    if isinstance(container, (str, Mapping)):
        return item in container
    return None


_COMPARATORS: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "==": _equal,
    "!=": lambda a, b: not _equal(a, b),
    "<": lambda a, b: _orderable(a, b) and a < b,
    "<=": lambda a, b: _orderable(a, b) and a <= b,
    ">": lambda a, b: _orderable(a, b) and a > b,
    ">=": lambda a, b: _orderable(a, b) and a >= b,
    # A type mismatch makes both "in" and "not in" false (like comparisons with null).
    "in": lambda a, b: _membership(a, b) is True,
    "not in": lambda a, b: _membership(a, b) is False,
}


def _startswith(text: Any, prefix: Any) -> bool:
    return isinstance(text, str) and isinstance(prefix, str) and text.startswith(prefix)


def _endswith(text: Any, suffix: Any) -> bool:
    return isinstance(text, str) and isinstance(suffix, str) and text.endswith(suffix)


def _contains(text: Any, part: Any) -> bool:
    return isinstance(text, str) and isinstance(part, str) and part in text


def _lower(text: Any) -> str | None:
    return text.lower() if isinstance(text, str) else None


_IMPLEMENTATIONS: Final[Mapping[str, Callable[..., Any]]] = {
    "startswith": _startswith,
    "endswith": _endswith,
    "contains": _contains,
    "lower": _lower,
}


def _compile(node: Node) -> Evaluator:
    """Turn the AST into nested closures once, so per-request evaluation has no dispatch."""
    if isinstance(node, Const):
        value = node.value
        return lambda ctx: value
    if isinstance(node, Path):
        return _compile_path(node)
    if isinstance(node, Compare):
        return _compile_compare(node)
    if isinstance(node, BoolOp):
        return _compile_bool(node)
    if isinstance(node, Not):
        operand = _compile(node.operand)
        return lambda ctx: not operand(ctx)
    if isinstance(node, Call):
        return _compile_call(node)
    items = tuple(_compile(item) for item in node.items)
    return lambda ctx: tuple(item(ctx) for item in items)


def _compile_path(node: Path) -> Evaluator:
    root, keys = node.root, node.keys
    if not keys:
        return lambda ctx: ctx.get(root)
    if len(keys) == 1:
        key = keys[0]
        return lambda ctx: _get(ctx.get(root), key)

    def lookup(ctx: Context) -> Any:
        value = ctx.get(root)
        for key in keys:
            value = _get(value, key)
        return value

    return lookup


def _compile_compare(node: Compare) -> Evaluator:
    left = _compile(node.left)
    right_node = node.right
    # Fast path for the common `x in ["a", "b"]`: a frozenset lookup instead of a scan.
    if node.op in ("in", "not in") and _is_string_tuple(right_node):
        assert isinstance(right_node, Const)
        choices = frozenset(right_node.value)
        if node.op == "in":
            return lambda ctx: _str_in(left(ctx), choices)
        return lambda ctx: not _str_in(left(ctx), choices)
    compare = _COMPARATORS[node.op]
    right = _compile(right_node)
    return lambda ctx: compare(left(ctx), right(ctx))


def _is_string_tuple(node: Node) -> bool:
    return (
        isinstance(node, Const) and isinstance(node.value, tuple) and all(type(v) is str for v in node.value)
    )


def _str_in(item: Any, choices: frozenset[str]) -> bool:
    # Same result as the generic list scan: a non-string never equals a string.
    return isinstance(item, str) and item in choices


def _compile_bool(node: BoolOp) -> Evaluator:
    operands = tuple(_compile(operand) for operand in node.operands)
    if node.op == "and":

        def all_true(ctx: Context) -> bool:
            # An explicit loop rather than all(<generator>): it avoids creating a
            # generator per request, which is measurable at this granularity.
            for operand in operands:  # noqa: SIM110
                if not operand(ctx):
                    return False
            return True

        return all_true

    def any_true(ctx: Context) -> bool:
        for operand in operands:  # noqa: SIM110 (see all_true)
            if operand(ctx):
                return True
        return False

    return any_true


def _compile_call(node: Call) -> Evaluator:
    function = _IMPLEMENTATIONS[node.func]
    args = tuple(_compile(arg) for arg in node.args)
    if len(args) == 1:
        (only,) = args
        return lambda ctx: function(only(ctx))
    first, second = args
    return lambda ctx: function(first(ctx), second(ctx))
