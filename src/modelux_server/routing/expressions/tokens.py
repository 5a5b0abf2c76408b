"""Tokenizer: turns rule source text into a flat list of :class:`Token`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from modelux_server.routing.expressions.errors import ExpressionError

_KEYWORDS: Final = frozenset({"and", "or", "not", "in", "true", "false", "null"})
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
