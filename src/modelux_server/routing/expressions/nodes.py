"""AST of frozen dataclasses produced by the parser."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias


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
