"""Aggregation of ensemble answers.

An ensemble fans one chat request out to several members and must return a single
answer.  These are pure functions over the members' results so they can be tested and
reasoned about without any I/O; the proxy decides which member's response to forward
based on the returned :class:`Aggregate`.

A member counts as *valid* when it succeeded and produced non-blank text: an empty
completion is not an answer, and letting it vote would let several truncated or
refused responses outvote a real one.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "AGGREGATIONS",
    "Aggregate",
    "MemberResult",
    "NoValidAnswer",
    "first_valid",
    "majority_vote",
    "normalize",
    "weighted_vote",
]

# Trailing sentence punctuation does not change an answer ("Paris." == "Paris").
_TRAILING_PUNCTUATION: Final = ".!?,;:…"
_QUOTES: Final = "\"'`“”‘’«»„"
# Weight sums are floats; round before comparing so 0.1 + 0.2 ties with 0.3.
_WEIGHT_DIGITS: Final = 9


@dataclass(frozen=True)
class MemberResult:
    index: int
    model: str
    weight: float
    ok: bool
    content: str | None
    latency_ms: float
    error: str | None
    finished_at: float


@dataclass(frozen=True)
class Aggregate:
    winner: MemberResult
    agreed: list[int]
    votes: dict[str, float]
    strategy: str


class NoValidAnswer(Exception):
    """No member produced a usable answer; ``results`` holds every member's outcome."""

    def __init__(self, results: Sequence[MemberResult]) -> None:
        self.results = tuple(results)
        super().__init__(_failure_summary(self.results))


def _failure_summary(results: Sequence[MemberResult]) -> str:
    if not results:
        return "ensemble produced no member results"
    details = "; ".join(f"#{r.index} {r.model}: {_failure_reason(r)}" for r in results)
    return f"no ensemble member produced a valid answer ({details})"


def _failure_reason(result: MemberResult) -> str:
    if not result.ok:
        return result.error or "failed"
    return "empty answer"


def normalize(text: str) -> str:
    """Canonical form of an answer for voting (not for display)."""
    # NFKC folds compatibility forms (full-width digits, ligatures) that models emit
    # inconsistently; casefold is the Unicode-correct case-insensitive comparison form.
    text = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    # Quotes and punctuation can wrap each other ('"Paris."' or '"Paris".'), so peel
    # layers until nothing changes.
    previous = None
    while text != previous:
        previous = text
        text = text.rstrip(_TRAILING_PUNCTUATION).strip()
        text = _strip_surrounding_quotes(text)
    return text


def _strip_surrounding_quotes(text: str) -> str:
    # Only an outer pair that wraps the whole answer is removed: '"a" and "b"' starts and
    # ends with quotes but is two quoted words, so it must stay as it is.
    if len(text) < 2 or text[0] not in _QUOTES or text[-1] not in _QUOTES:
        return text
    inner = text[1:-1]
    if text[0] in inner or text[-1] in inner:
        return text
    return inner.strip()


def _is_valid(result: MemberResult) -> bool:
    return result.ok and result.content is not None and result.content.strip() != ""


def _valid_results(results: Sequence[MemberResult]) -> list[MemberResult]:
    valid = [r for r in results if _is_valid(r)]
    if not valid:
        raise NoValidAnswer(results)
    return valid


def _safe_weight(weight: float) -> float:
    # Weights are validated when an ensemble is configured; this only keeps a bad value
    # (NaN, negative) from making the comparison order meaningless on the request path.
    return weight if math.isfinite(weight) and weight > 0 else 0.0


@dataclass
class _Tally:
    """Votes for one normalized answer, in member order."""

    members: list[MemberResult] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def weight(self) -> float:
        return math.fsum(_safe_weight(m.weight) for m in self.members)

    @property
    def first(self) -> MemberResult:
        return self.members[0]


def _tally(valid: Sequence[MemberResult]) -> dict[str, _Tally]:
    tallies: dict[str, _Tally] = {}
    for result in sorted(valid, key=lambda r: r.index):
        assert result.content is not None  # guaranteed by _is_valid
        tallies.setdefault(normalize(result.content), _Tally()).members.append(result)
    return tallies


def _aggregate(
    winner: MemberResult, tallies: dict[str, _Tally], votes: dict[str, float], strategy: str
) -> Aggregate:
    assert winner.content is not None
    agreed = [m.index for m in tallies[normalize(winner.content)].members]
    return Aggregate(winner=winner, agreed=agreed, votes=votes, strategy=strategy)


def first_valid(results: Sequence[MemberResult]) -> Aggregate:
    """The earliest-finishing valid member wins (ties go to the lower index).

    ``votes`` still reports answer counts so callers can log how much agreement there was.
    """
    valid = _valid_results(results)
    tallies = _tally(valid)
    winner = min(valid, key=lambda r: (r.finished_at, r.index))
    votes = {answer: float(t.count) for answer, t in tallies.items()}
    return _aggregate(winner, tallies, votes, "first_valid")


def majority_vote(results: Sequence[MemberResult]) -> Aggregate:
    """Most common answer; ties by summed weight, then by the earliest member in order."""
    valid = _valid_results(results)
    tallies = _tally(valid)
    best = min(
        tallies.values(),
        key=lambda t: (-t.count, -round(t.weight, _WEIGHT_DIGITS), t.first.index),
    )
    votes = {answer: float(t.count) for answer, t in tallies.items()}
    return _aggregate(best.first, tallies, votes, "majority_vote")


def weighted_vote(results: Sequence[MemberResult]) -> Aggregate:
    """Answer with the largest summed weight; ties by count, then by earliest member."""
    valid = _valid_results(results)
    tallies = _tally(valid)
    best = min(
        tallies.values(),
        key=lambda t: (-round(t.weight, _WEIGHT_DIGITS), -t.count, t.first.index),
    )
    votes = {answer: t.weight for answer, t in tallies.items()}
    return _aggregate(best.first, tallies, votes, "weighted_vote")


AGGREGATIONS: Final[dict[str, Callable[[Sequence[MemberResult]], Aggregate]]] = {
    "first_valid": first_valid,
    "majority_vote": majority_vote,
    "weighted_vote": weighted_vote,
}
