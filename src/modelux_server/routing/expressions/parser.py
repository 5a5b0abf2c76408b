"""Recursive-descent parser building the AST from tokens, with static validation."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

from modelux_server.routing.expressions.constants import FUNCTIONS, MAX_NESTING, ROOT_NAMES
from modelux_server.routing.expressions.errors import ExpressionError
from modelux_server.routing.expressions.nodes import BoolOp, Call, Compare, Const, ListExpr, Node, Not, Path
from modelux_server.routing.expressions.tokens import (
    EOF,
    KEYWORD,
    NAME,
    NUMBER,
    OP,
    STRING,
    Token,
    _describe,
    tokenize,
)

_CONSTANTS: Final[Mapping[str, Any]] = {"true": True, "false": False, "null": None}
_COMPARISON_SYMBOLS: Final = frozenset({"==", "!=", "<", "<=", ">", ">="})


class _Parser:
    def __init__(self, source: str) -> None:
        self._tokens = tokenize(source)
        self._i = 0
        self._depth = 0
        self.names: set[str] = set()

    def parse(self) -> Node:
        if self._peek().kind == EOF:
            raise ExpressionError("empty expression", 0)
        node = self._expression()
        token = self._peek()
        if token.kind != EOF:
            raise self._unexpected(token)
        return node

    # -- token helpers

    def _peek(self, ahead: int = 0) -> Token:
        # The EOF token is never consumed past, so clamp instead of bounds-checking callers.
        return self._tokens[min(self._i + ahead, len(self._tokens) - 1)]

    def _advance(self) -> Token:
        token = self._peek()
        if token.kind != EOF:
            self._i += 1
        return token

    def _at(self, kind: str, value: Any = None, ahead: int = 0) -> bool:
        token = self._peek(ahead)
        return token.kind == kind and (value is None or token.value == value)

    def _accept(self, kind: str, value: Any) -> bool:
        if self._at(kind, value):
            self._advance()
            return True
        return False

    def _expect(self, kind: str, value: str) -> Token:
        if not self._at(kind, value):
            raise ExpressionError(f"expected '{value}'", self._peek().pos)
        return self._advance()

    @staticmethod
    def _unexpected(token: Token) -> ExpressionError:
        return ExpressionError(f"unexpected {_describe(token)}", token.pos)

    @contextmanager
    def _nested(self, token: Token) -> Iterator[None]:
        # Bounds both evaluation recursion and parser recursion (so a flood of "(" can
        # never hit Python's recursion limit).
        self._depth += 1
        if self._depth > MAX_NESTING:
            raise ExpressionError(f"expression nested too deeply (max {MAX_NESTING})", token.pos)
        try:
            yield
        finally:
            self._depth -= 1

    # -- grammar

    def _expression(self) -> Node:
        return self._bool_chain("or", self._and_expr)

    def _and_expr(self) -> Node:
        return self._bool_chain("and", self._not_expr)

    def _bool_chain(self, op: str, operand: Callable[[], Node]) -> Node:
        first = operand()
        operands = [first]
        while self._accept(KEYWORD, op):
            operands.append(operand())
        if len(operands) == 1:
            return first
        return BoolOp(op, tuple(operands), _pos(first))

    def _not_expr(self) -> Node:
        token = self._peek()
        if token.kind == KEYWORD and token.value == "not":
            self._advance()
            with self._nested(token):
                return Not(self._not_expr(), token.pos)
        return self._comparison()

    def _comparison(self) -> Node:
        left = self._operand()
        op_token = self._peek()
        op = self._comparison_operator()
        if op is None:
            return left
        right = self._operand()
        if self._comparison_operator() is not None:
            raise ExpressionError("comparisons cannot be chained; combine them with 'and'", op_token.pos)
        return Compare(op, left, right, op_token.pos)

    def _comparison_operator(self) -> str | None:
        """Consume and return a comparison operator if one is next."""
        token = self._peek()
        if token.kind == OP and token.value in _COMPARISON_SYMBOLS:
            self._advance()
            return str(token.value)
        if token.kind == KEYWORD and token.value == "in":
            self._advance()
            return "in"
        if token.kind == KEYWORD and token.value == "not":
            if not self._at(KEYWORD, "in", ahead=1):
                raise ExpressionError("expected 'in' after 'not'", self._peek(1).pos)
            self._advance()
            self._advance()
            return "not in"
        return None

    def _operand(self) -> Node:
        token = self._peek()
        if token.kind == NAME:
            if self._at(OP, "(", ahead=1):
                return self._no_postfix(self._call())
            return self._path()
        return self._no_postfix(self._non_name_operand(token))

    def _non_name_operand(self, token: Token) -> Node:
        if token.kind in (STRING, NUMBER):
            self._advance()
            return Const(token.value, token.pos)
        if token.kind == KEYWORD and token.value in _CONSTANTS:
            self._advance()
            return Const(_CONSTANTS[token.value], token.pos)
        if token.kind == OP and token.value == "-":
            return self._negative_number()
        if token.kind == OP and token.value == "(":
            return self._group()
        if token.kind == OP and token.value == "[":
            return self._list()
        raise self._unexpected(token)

    def _no_postfix(self, node: Node) -> Node:
        # Lookups are only defined on context names; "lower(x).y" or "(x)[...]" has no
        # meaning, so reject it here rather than silently evaluating to null.
        token = self._peek()
        if token.kind == OP and token.value == "[":
            raise ExpressionError("subscript is only allowed on 'tags'", token.pos)
        if token.kind == OP and token.value == ".":
            raise ExpressionError("attribute access is only allowed on names", token.pos)
        return node

    def _negative_number(self) -> Node:
        minus = self._advance()
        token = self._peek()
        if token.kind != NUMBER:
            raise ExpressionError("expected a number after '-'", token.pos)
        self._advance()
        return Const(-token.value, minus.pos)

    def _group(self) -> Node:
        opening = self._advance()
        with self._nested(opening):
            node = self._expression()
        self._expect(OP, ")")
        return node

    def _list(self) -> Node:
        opening = self._advance()
        with self._nested(opening):
            items = self._items("]")
        if all(isinstance(item, Const) for item in items):
            return Const(tuple(item.value for item in items if isinstance(item, Const)), opening.pos)
        return ListExpr(tuple(items), opening.pos)

    def _items(self, closing: str) -> list[Node]:
        """Comma-separated expressions up to ``closing`` (a trailing comma is allowed)."""
        items: list[Node] = []
        while not self._accept(OP, closing):
            items.append(self._expression())
            if self._accept(OP, closing):
                break
            if not self._accept(OP, ","):
                raise ExpressionError(f"expected ',' or '{closing}'", self._peek().pos)
        return items

    def _call(self) -> Node:
        name = self._advance()
        arity = FUNCTIONS.get(name.value)
        if arity is None:
            raise ExpressionError(f"unknown function '{name.value}'", name.pos)
        opening = self._advance()
        with self._nested(opening):
            args = self._items(")")
        if len(args) != arity:
            plural = "argument" if arity == 1 else "arguments"
            raise ExpressionError(f"{name.value}() takes {arity} {plural}, got {len(args)}", name.pos)
        return Call(name.value, tuple(args), name.pos)

    def _path(self) -> Node:
        root = self._advance()
        if root.value not in ROOT_NAMES:
            raise ExpressionError(_unknown_name_message(root.value), root.pos)
        self.names.add(root.value)
        keys: list[str] = []
        while True:
            if self._accept(OP, "."):
                keys.append(self._attribute_name())
            elif self._at(OP, "["):
                keys.append(self._subscript(root.value, keys))
            else:
                return Path(root.value, tuple(keys), root.pos)

    def _attribute_name(self) -> str:
        token = self._advance()
        # Keywords are fine as keys: a tag may well be called "in" or "null".
        if token.kind not in (NAME, KEYWORD):
            raise ExpressionError("expected a name after '.'", token.pos)
        return str(token.value)

    def _subscript(self, root: str, keys: list[str]) -> str:
        bracket = self._advance()
        if root != "tags" or keys:
            raise ExpressionError("subscript is only allowed on 'tags'", bracket.pos)
        key = self._advance()
        if key.kind != STRING:
            raise ExpressionError("subscript must be a string literal", key.pos)
        self._expect(OP, "]")
        return str(key.value)


def _pos(node: Node) -> int:
    return node.pos


def _unknown_name_message(name: str) -> str:
    message = f"unknown name '{name}'"
    if name in FUNCTIONS:
        return f"{message} ('{name}' is a function; call it as {name}(...))"
    if name.lower() in _CONSTANTS:
        return f"{message} (did you mean '{name.lower()}'?)"
    close = difflib.get_close_matches(name, sorted(ROOT_NAMES), n=1)
    return f"{message} (did you mean '{close[0]}'?)" if close else message
