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

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelux_server.routing.expressions.constants import FUNCTIONS, MAX_NESTING, MAX_SOURCE_LENGTH, ROOT_NAMES
from modelux_server.routing.expressions.errors import ExpressionError
from modelux_server.routing.expressions.evaluate import Evaluator, _compile
from modelux_server.routing.expressions.nodes import BoolOp, Call, Compare, Const, ListExpr, Node, Not, Path
from modelux_server.routing.expressions.parser import _Parser
from modelux_server.routing.expressions.tokens import Token, tokenize

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
