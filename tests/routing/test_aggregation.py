from __future__ import annotations

import dataclasses

import pytest

from modelux_server.routing.aggregation import (
    AGGREGATIONS,
    Aggregate,
    MemberResult,
    NoValidAnswer,
    first_valid,
    majority_vote,
    normalize,
    weighted_vote,
)


def ok(index: int, content: str, *, weight: float = 1.0, finished_at: float | None = None) -> MemberResult:
    return MemberResult(
        index=index,
        model=f"model-{index}",
        weight=weight,
        ok=True,
        content=content,
        latency_ms=100.0 + index,
        error=None,
        finished_at=float(index) if finished_at is None else finished_at,
    )


def failed(index: int, *, finished_at: float = 0.0, error: str = "timeout") -> MemberResult:
    return MemberResult(
        index=index,
        model=f"model-{index}",
        weight=1.0,
        ok=False,
        content=None,
        latency_ms=5.0,
        error=error,
        finished_at=finished_at,
    )


# ----------------------------------------------------------------- normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Paris  ", "paris"),
        ("PARIS", "paris"),
        ("The   answer\n\tis  42", "the answer is 42"),
        ("Paris.", "paris"),
        ("Paris!!!", "paris"),
        ("Really?", "really"),
        ('"Paris"', "paris"),
        ("'Paris'", "paris"),
        ('"Paris."', "paris"),
        ('"Paris".', "paris"),
        ("“Paris.”", "paris"),
        ("  ' Paris ! '  ", "paris"),
        ("3.14", "3.14"),
        ("it's fine.", "it's fine"),
        ('"yes" and "no"', '"yes" and "no"'),
        ("Straße", "strasse"),  # casefold, not just lower
        ("４２", "42"),  # full-width digits fold to ASCII
        ("", ""),
        ("...", ""),
    ],
)
def test_normalize_ignores_case_spacing_quotes_and_trailing_punctuation(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_keeps_internal_punctuation_meaningful() -> None:
    assert normalize("1,000") != normalize("1000")
    assert normalize("U.S.A.") == "u.s.a"


# ----------------------------------------------------------------- first_valid


def test_first_valid_picks_earliest_finished_ok_member() -> None:
    results = [
        ok(0, "A", finished_at=3.0),
        ok(1, "B", finished_at=1.0),
        ok(2, "C", finished_at=2.0),
    ]
    aggregate = first_valid(results)
    assert aggregate.winner.index == 1
    assert aggregate.strategy == "first_valid"


def test_first_valid_skips_members_that_failed_first() -> None:
    results = [failed(0, finished_at=0.1), ok(1, "B", finished_at=0.5), failed(2, finished_at=0.2)]
    assert first_valid(results).winner.index == 1


def test_first_valid_skips_empty_answers() -> None:
    results = [ok(0, "   ", finished_at=0.1), ok(1, "B", finished_at=0.5)]
    assert first_valid(results).winner.index == 1


def test_first_valid_tie_goes_to_lower_index() -> None:
    results = [ok(2, "C", finished_at=1.0), ok(1, "B", finished_at=1.0)]
    assert first_valid(results).winner.index == 1


def test_first_valid_reports_agreement_and_counts() -> None:
    results = [ok(0, "Yes.", finished_at=2.0), ok(1, "yes", finished_at=1.0), ok(2, "No")]
    aggregate = first_valid(results)
    assert aggregate.winner.index == 1
    assert aggregate.agreed == [0, 1]
    assert aggregate.votes == {"yes": 2.0, "no": 1.0}


# ----------------------------------------------------------------- majority_vote


def test_majority_picks_most_common_normalized_answer() -> None:
    results = [ok(0, "Paris"), ok(1, "London"), ok(2, "paris."), ok(3, '"PARIS"')]
    aggregate = majority_vote(results)
    assert aggregate.winner.index == 0
    assert aggregate.agreed == [0, 2, 3]
    assert aggregate.votes == {"paris": 3.0, "london": 1.0}
    assert aggregate.strategy == "majority_vote"


def test_majority_count_beats_weight() -> None:
    results = [ok(0, "A", weight=5.0), ok(1, "B"), ok(2, "B")]
    assert majority_vote(results).winner.index == 1


def test_majority_winner_is_lowest_index_member_with_answer() -> None:
    # Results arrive in completion order, not member order.
    results = [ok(3, "B"), ok(2, "A"), ok(1, "B"), ok(0, "C")]
    aggregate = majority_vote(results)
    assert aggregate.winner.index == 1
    assert aggregate.agreed == [1, 3]


def test_majority_ignores_failed_members() -> None:
    results = [failed(0), failed(1), ok(2, "A"), ok(3, "B"), ok(4, "B")]
    aggregate = majority_vote(results)
    assert aggregate.winner.index == 3
    assert aggregate.votes == {"a": 1.0, "b": 2.0}


def test_majority_tie_broken_by_weight_then_order() -> None:
    by_weight = [ok(0, "A", weight=1.0), ok(1, "B", weight=2.0), ok(2, "A"), ok(3, "B")]
    assert majority_vote(by_weight).winner.index == 1

    by_order = [ok(0, "B"), ok(1, "A"), ok(2, "A"), ok(3, "B")]
    assert majority_vote(by_order).winner.index == 0


def test_float_weight_sums_that_differ_only_by_rounding_are_ties() -> None:
    # In binary floating point 0.1 + 0.2 != 0.3; that artefact must not decide a vote.
    majority = [
        ok(0, "B", weight=0.1),
        ok(1, "A", weight=0.3),
        ok(2, "B", weight=0.2),
        ok(3, "A", weight=0.0),
    ]
    assert majority_vote(majority).winner.index == 0  # equal count, equal weight -> order

    weighted = [ok(0, "A", weight=0.3), ok(1, "B", weight=0.1), ok(2, "B", weight=0.2)]
    assert weighted_vote(weighted).winner.index == 1  # equal weight -> B has more votes


def test_single_valid_member_wins_every_strategy() -> None:
    results = [failed(0), ok(1, "only")]
    for aggregate_fn in AGGREGATIONS.values():
        aggregate = aggregate_fn(results)
        assert aggregate.winner.index == 1
        assert aggregate.agreed == [1]


# ----------------------------------------------------------------- weighted_vote


def test_weighted_heavy_member_outvotes_two_light_ones() -> None:
    results = [ok(0, "A", weight=0.5), ok(1, "B", weight=2.0), ok(2, "A", weight=0.5)]
    aggregate = weighted_vote(results)
    assert aggregate.winner.index == 1
    assert aggregate.agreed == [1]
    assert aggregate.votes == {"a": 1.0, "b": 2.0}
    assert aggregate.strategy == "weighted_vote"


def test_weighted_sums_weights_of_agreeing_members() -> None:
    results = [ok(0, "A", weight=1.5), ok(1, "B", weight=1.0), ok(2, "b", weight=1.0)]
    aggregate = weighted_vote(results)
    assert aggregate.winner.index == 1
    assert aggregate.agreed == [1, 2]


def test_weighted_tie_broken_by_count_then_order() -> None:
    by_count = [ok(0, "A", weight=2.0), ok(1, "B"), ok(2, "B")]
    assert weighted_vote(by_count).winner.index == 1

    by_order = [ok(0, "B", weight=2.0), ok(1, "A", weight=2.0)]
    assert weighted_vote(by_order).winner.index == 0


def test_weighted_ignores_nonsensical_weights() -> None:
    results = [ok(0, "A", weight=float("nan")), ok(1, "A", weight=-5.0), ok(2, "B", weight=0.5)]
    aggregate = weighted_vote(results)
    assert aggregate.winner.index == 2
    assert aggregate.votes == {"a": 0.0, "b": 0.5}


# ----------------------------------------------------------------- failures and registry


@pytest.mark.parametrize("strategy", sorted(AGGREGATIONS))
def test_no_valid_answer_when_every_member_failed(strategy: str) -> None:
    results = [failed(0, error="timeout"), failed(1, error="HTTP 500"), ok(2, "")]
    with pytest.raises(NoValidAnswer) as info:
        AGGREGATIONS[strategy](results)
    assert info.value.results == tuple(results)
    assert "timeout" in str(info.value)
    assert "HTTP 500" in str(info.value)
    assert "empty answer" in str(info.value)


@pytest.mark.parametrize("strategy", sorted(AGGREGATIONS))
def test_no_valid_answer_when_there_are_no_results(strategy: str) -> None:
    with pytest.raises(NoValidAnswer, match="no member results"):
        AGGREGATIONS[strategy]([])


def test_ok_member_without_content_is_not_valid() -> None:
    member = dataclasses.replace(ok(0, "x"), content=None)
    with pytest.raises(NoValidAnswer):
        majority_vote([member])


def test_registry_exposes_the_three_strategies() -> None:
    expected = {
        "first_valid": first_valid,
        "majority_vote": majority_vote,
        "weighted_vote": weighted_vote,
    }
    assert expected == AGGREGATIONS


def test_aggregate_strategy_matches_registry_key() -> None:
    results = [ok(0, "A"), ok(1, "B")]
    for name, aggregate_fn in AGGREGATIONS.items():
        assert aggregate_fn(results).strategy == name


def test_winner_is_the_original_member_result() -> None:
    results = [ok(0, "  Paris! "), ok(1, "paris")]
    aggregate = majority_vote(results)
    assert aggregate.winner is results[0]
    assert aggregate.winner.content == "  Paris! "  # normalization is only for voting
    assert isinstance(aggregate, Aggregate)


def test_results_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ok(0, "A").weight = 2.0  # type: ignore[misc]
