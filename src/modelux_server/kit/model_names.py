"""What a model name may be, wherever one comes from.

A model name travels into request-log rows, log lines and response headers,
whether a caller sent it in a `/v1` body or a routing config names it: a line
break or control character there could forge a header or a log line, and
PostgreSQL text cannot hold NUL at all. The proxy's body check and the
routing strategies' specs both apply this one rule.
"""

from __future__ import annotations

MAX_MODEL_NAME_LENGTH = 256


def model_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a model name (to follow its field's name), or None when it can."""
    if not name:
        return "must not be empty"
    if len(name) > MAX_MODEL_NAME_LENGTH or not name.isprintable():
        return (
            f"must be at most {MAX_MODEL_NAME_LENGTH} printable characters "
            "(no control characters or line breaks)"
        )
    return None
