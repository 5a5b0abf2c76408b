"""How a verdict reads on the wire: OpenAI's `x-ratelimit-*` headers and the 429.

The names and the duration format (`"1s"`, `"6m0s"`, `"250ms"`) are
OpenAI's, so the official SDKs and the tools built on them read ours the
same way. `Retry-After` is whole seconds, rounded up.
"""

from __future__ import annotations

from modelux_server.errors import RateLimited
from modelux_server.ratelimit.limiter import Allowed, Refused, Verdict

LIMIT = "x-ratelimit-limit-requests"
REMAINING = "x-ratelimit-remaining-requests"
RESET = "x-ratelimit-reset-requests"

_CREDENTIAL_WORDS = {"api_key": "this API key", "management_key": "this management key"}


def rate_headers(verdict: Verdict) -> dict[str, str]:
    """The `x-ratelimit-*` headers of an answer."""
    if isinstance(verdict, Allowed):
        return {
            LIMIT: str(verdict.limit),
            REMAINING: str(verdict.remaining),
            RESET: duration(verdict.reset_us),
        }
    return {LIMIT: str(verdict.limit), REMAINING: "0", RESET: duration(verdict.reset_us)}


def refusal(verdict: Refused, credential: str) -> RateLimited:
    """The 429 for a refused request, headers included.

    Its body says plainly that this is the key's per-minute limit, so nobody
    mistakes it for the plan's monthly cap (a 402, which waiting a minute
    does not lift).
    """
    seconds = verdict.retry_after_seconds
    whom = _CREDENTIAL_WORDS.get(credential, "this key")
    error = RateLimited(
        f"Rate limit reached: {whom} may make {verdict.limit:,} requests per minute. "
        f"Retry in {seconds} s. This is a per-key limit, not the plan's monthly request cap.",
        limit={"name": "requests_per_minute", "limit": verdict.limit, "scope": credential},
    )
    error.headers.update(rate_headers(verdict))
    error.headers["Retry-After"] = str(seconds)
    return error


def duration(us: int) -> str:
    """Microseconds as OpenAI writes a duration: `"120ms"`, `"1.5s"`, `"1m0s"`."""
    if us <= 0:
        return "0s"
    if us < 1_000_000:
        return f"{-(-us // 1000)}ms"
    minutes, rest = divmod(us, 60_000_000)
    seconds = f"{rest / 1_000_000:.3f}".rstrip("0").rstrip(".")
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"
