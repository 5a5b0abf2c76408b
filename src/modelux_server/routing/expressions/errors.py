"""The single exception type raised for rules that cannot be parsed."""

from __future__ import annotations

from typing import Any


class ExpressionError(ValueError):
    """A rule that cannot be parsed; ``position`` is a 0-based offset into the source."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at position {position}")
        self.message = message
        self.position = position

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the two-argument constructor working across pickling (e.g. worker pools).
        return (type(self), (self.message, self.position))
