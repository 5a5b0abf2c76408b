"""Public limits and vocabulary of the rule language."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

MAX_SOURCE_LENGTH: Final = 2000
MAX_NESTING: Final = 32

ROOT_NAMES: Final = frozenset(
    {"tags", "end_user", "model", "prompt_tokens", "hour", "weekday", "usage", "plan"}
)
# Function name -> number of arguments.
FUNCTIONS: Final[Mapping[str, int]] = {"startswith": 2, "endswith": 2, "contains": 2, "lower": 1}
