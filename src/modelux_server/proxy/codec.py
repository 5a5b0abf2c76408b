"""JSON for the hot path: orjson, falling back to the standard library where they differ.

orjson is several times faster than `json`, but it is not a drop-in replacement:
it reads integers past 64 bits as floats (a `seed` of 30 digits would reach the
upstream rounded) and refuses lone surrogates and big integers on output. Those
cases go through `json`, so the bytes on the wire mean exactly what they did
before; the common case never pays for the check beyond one regex scan.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# Twenty digits in a row may be an integer orjson cannot hold exactly (u64 tops at 20 digits).
_LONG_NUMBER = re.compile(rb"\d{20}")


def parse(raw: bytes) -> tuple[Any, bool]:
    """Parse JSON bytes into (value, strict); raises ValueError on invalid input.

    ``strict`` means orjson read the bytes exactly (RFC 8259, no oversized integers),
    so the same bytes can be relayed instead of serialising the value again.
    """
    if _LONG_NUMBER.search(raw) is None:
        try:
            return orjson.loads(raw), True
        except orjson.JSONDecodeError:
            pass  # what the standard library accepts (NaN, lone surrogates) stays accepted
    try:
        return json.loads(raw), False
    except RecursionError:
        # nesting deeper than the interpreter's stack: invalid input like any other
        raise ValueError("JSON nests too deeply") from None


def loads(raw: bytes) -> Any:
    """Parse JSON bytes; raises ValueError (or UnicodeDecodeError) on invalid input."""
    return parse(raw)[0]


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON."""
    try:
        return orjson.dumps(value)
    except TypeError:  # big integers, lone surrogates: ASCII output escapes the latter validly
        return json.dumps(value, separators=(",", ":")).encode()
