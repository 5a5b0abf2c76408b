"""A small, safe expression language for custom routing rules.

Rules are written by customers and evaluated on every proxied request, so this module
never uses Python's ``eval``: a hand-written tokenizer and recursive-descent parser build
an AST of frozen dataclasses, which is then compiled once into a tree of closures.

Design constraints, and how they are met:

* Safety: only a fixed set of root names and four string functions exist; there are no
  loops, no user-defined functions and no access to Python attributes (lookups only go
  through ``Mapping.get``).
* Bounded cost: sources are capped at ``MAX_SOURCE_LENGTH`` characters and
  ``MAX_NESTING`` levels, and evaluation visits every AST node at most once, so the cost
  is linear in the size of the rule (plus the size of the strings it inspects).
* Never failing a request: missing names evaluate to ``null``; ordering and membership
  tests on ``null`` or on mismatched types are simply false.  All user mistakes that can
  be detected statically are reported by :func:`parse` with a character position.

Grammar (EBNF)::

    expression  = or_expr ;
    or_expr     = and_expr { "or" and_expr } ;
    and_expr    = not_expr { "and" not_expr } ;
    not_expr    = "not" not_expr | comparison ;
    comparison  = operand [ comp_op operand ] ;          (* no chaining *)
    comp_op     = "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in" ;
    operand     = literal | list | call | path | "(" expression ")" ;
    list        = "[" [ expression { "," expression } [ "," ] ] "]" ;
    call        = FUNCTION "(" [ expression { "," expression } ] ")" ;
    path        = ROOT { "." NAME | "[" STRING "]" } ;    (* "[...]" only as tags["k"] *)
    literal     = STRING | [ "-" ] NUMBER | "true" | "false" | "null" ;
"""

from __future__ import annotations

import difflib
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

__all__ = [
    "FUNCTIONS",
    "MAX_NESTING",
    "MAX_SOURCE_LENGTH",
    "ROOT_NAMES",
    "BoolOp",
    "Call",
    "Compare",
    "Const",
    "Expression",
    "ExpressionError",
    "ListExpr",
    "Node",
    "Not",
    "Path",
    "Token",
    "parse",
    "tokenize",
]

logger = logging.getLogger(__name__)

MAX_SOURCE_LENGTH: Final = 2000
MAX_NESTING: Final = 32

ROOT_NAMES: Final = frozenset(
    {"tags", "end_user", "model", "prompt_tokens", "hour", "weekday", "usage", "plan"}
)
# Function name -> number of arguments.
FUNCTIONS: Final[Mapping[str, int]] = {"startswith": 2, "endswith": 2, "contains": 2, "lower": 1}

_KEYWORDS: Final = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_CONSTANTS: Final[Mapping[str, Any]] = {"true": True, "false": False, "null": None}
_COMPARISON_SYMBOLS: Final = frozenset({"==", "!=", "<", "<=", ">", ">="})
_TWO_CHAR_OPS: Final = frozenset({"==", "!=", "<=", ">="})
_ONE_CHAR_OPS: Final = frozenset("<>()[],.-")
_DIGITS: Final = frozenset("0123456789")
_ESCAPES: Final[Mapping[str, str]] = {
    "\\": "\\",
    '"': '"',
    "'": "'",
    "n": "\n",
    "t": "\t",
    "r": "\r",
}
# Characters people commonly type from other languages; a hint beats a bare "unexpected".
_CHAR_HINTS: Final[Mapping[str, str]] = {
    "=": "use '==' to compare",
    "!": "use 'not' or '!='",
    "&": "use 'and'",
    "|": "use 'or'",
}


class ExpressionError(ValueError):
    """A rule that cannot be parsed; ``position`` is a 0-based offset into the source."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at position {position}")
        self.message = message
        self.position = position

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the two-argument constructor working across pickling (e.g. worker pools).
        return (type(self), (self.message, self.position))


# --------------------------------------------------------------------------- tokens

STRING: Final = "string"
NUMBER: Final = "number"
NAME: Final = "name"
KEYWORD: Final = "keyword"
OP: Final = "op"
EOF: Final = "eof"


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    value: Any
    pos: int


def tokenize(source: str) -> list[Token]:
    """Split ``source`` into tokens, always ending with an EOF token."""
    tokens: list[Token] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch.isspace():
            i += 1
            continue
        token, i = _read_token(source, i)
        tokens.append(token)
    tokens.append(Token(EOF, None, n))
    return tokens


def _read_token(source: str, i: int) -> tuple[Token, int]:
    ch = source[i]
    if ch in "\"'":
        return _read_string(source, i)
    if ch in _DIGITS:
        return _read_number(source, i)
    if _is_name_start(ch):
        return _read_word(source, i)
    if source[i : i + 2] in _TWO_CHAR_OPS:
        return Token(OP, source[i : i + 2], i), i + 2
    if ch in _ONE_CHAR_OPS:
        return Token(OP, ch, i), i + 1
    hint = _CHAR_HINTS.get(ch)
    message = f"unexpected character {ch!r}" + (f" ({hint})" if hint else "")
    raise ExpressionError(message, i)


def _is_name_start(ch: str) -> bool:
    # ASCII only: look-alike Unicode letters in rule names would be a debugging nightmare.
    return ch == "_" or (ch.isascii() and ch.isalpha())


def _is_name_char(ch: str) -> bool:
    return ch == "_" or (ch.isascii() and ch.isalnum())


def _read_string(source: str, start: int) -> tuple[Token, int]:
    quote = source[start]
    parts: list[str] = []
    i, n = start + 1, len(source)
    while i < n:
        ch = source[i]
        if ch == quote:
            return Token(STRING, "".join(parts), start), i + 1
        if ch == "\\":
            text, i = _read_escape(source, i, start)
            parts.append(text)
            continue
        parts.append(ch)
        i += 1
    raise ExpressionError("unterminated string", start)


def _read_escape(source: str, i: int, string_start: int) -> tuple[str, int]:
    """Decode the escape whose backslash is at ``i``; return (text, next index)."""
    if i + 1 >= len(source):
        raise ExpressionError("unterminated string", string_start)
    code = source[i + 1]
    if code in _ESCAPES:
        return _ESCAPES[code], i + 2
    if code == "u":
        digits = source[i + 2 : i + 6]
        if len(digits) == 4 and all(c in "0123456789abcdefABCDEF" for c in digits):
            return chr(int(digits, 16)), i + 6
        raise ExpressionError("invalid \\u escape (expected 4 hex digits)", i)
    raise ExpressionError(f"invalid escape '\\{code}'", i)


def _skip_digits(source: str, i: int) -> int:
    while i < len(source) and source[i] in _DIGITS:
        i += 1
    return i


def _read_number(source: str, start: int) -> tuple[Token, int]:
    n = len(source)
    i = _skip_digits(source, start)
    is_float = False
    if i + 1 < n and source[i] == "." and source[i + 1] in _DIGITS:
        is_float = True
        i = _skip_digits(source, i + 1)
    if i < n and source[i] in "eE":
        j = i + 2 if i + 1 < n and source[i + 1] in "+-" else i + 1
        if j >= n or source[j] not in _DIGITS:
            raise ExpressionError("invalid number", start)
        is_float = True
        i = _skip_digits(source, j)
    if i < n and _is_name_char(source[i]):
        raise ExpressionError("invalid number", start)
    text = source[start:i]
    value: int | float = float(text) if is_float else int(text)
    if not math.isfinite(value):
        raise ExpressionError("number out of range", start)
    return Token(NUMBER, value, start), i


def _read_word(source: str, start: int) -> tuple[Token, int]:
    i = start + 1
    while i < len(source) and _is_name_char(source[i]):
        i += 1
    word = source[start:i]
    return Token(KEYWORD if word in _KEYWORDS else NAME, word, start), i


def _describe(token: Token) -> str:
    if token.kind == EOF:
        return "end of expression"
    if token.kind == STRING:
        return f"string {token.value!r}"
    if token.kind == NUMBER:
        return f"number {token.value!r}"
    if token.kind == NAME:
        return f"name '{token.value}'"
    return f"'{token.value}'"


# --------------------------------------------------------------------------- AST


@dataclass(frozen=True, slots=True)
class Const:
    """A literal; list literals whose items are all constant fold into a tuple here."""

    value: Any
    pos: int


@dataclass(frozen=True, slots=True)
class ListExpr:
    items: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Path:
    """``root.k1.k2`` or ``tags["k"]``; kept flat so long chains never deepen recursion."""

    root: str
    keys: tuple[str, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node
    pos: int


@dataclass(frozen=True, slots=True)
class BoolOp:
    """N-ary ``and``/``or``: flat so that long chains of conditions stay shallow."""

    op: str
    operands: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Node
    right: Node
    pos: int


Node: TypeAlias = Const | ListExpr | Path | Call | Not | BoolOp | Compare


# --------------------------------------------------------------------------- parser


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


# --------------------------------------------------------------------------- evaluation

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


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class Expression:
    """A parsed, validated rule condition. Immutable and safe to share across requests."""

    source: str
    root: Node
    _names: frozenset[str] = field(repr=False, compare=False)
    _evaluator: Evaluator = field(repr=False, compare=False)

    def evaluate(self, ctx: Mapping[str, Any]) -> bool:
        """Truthiness of the expression over ``ctx``; never raises."""
        try:
            return bool(self._evaluator(ctx))
        except Exception:
            # The evaluator itself does not raise on any input the language can express;
            # this guards against hostile context objects (e.g. a Mapping whose get()
            # raises), because a routing rule must never fail the request it routes.
            logger.debug("routing expression %r failed; treating as false", self.source)
            return False

    def names(self) -> set[str]:
        """Root context names the expression reads, e.g. ``{"tags", "usage"}``."""
        return set(self._names)

    def __str__(self) -> str:
        return self.source


def parse(source: str) -> Expression:
    """Parse and validate ``source``; raise :class:`ExpressionError` on any problem."""
    if not isinstance(source, str):
        raise ExpressionError("expression must be a string", 0)
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExpressionError(
            f"expression too long ({len(source)} characters, max {MAX_SOURCE_LENGTH})",
            MAX_SOURCE_LENGTH,
        )
    parser = _Parser(source)
    root = parser.parse()
    return Expression(source, root, frozenset(parser.names), _compile(root))
