from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from modelux_server.routing.expressions import (
    MAX_NESTING,
    MAX_SOURCE_LENGTH,
    BoolOp,
    Compare,
    Const,
    Expression,
    ExpressionError,
    Path,
    parse,
)


def make_ctx(**overrides: Any) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "tags": {"team": "search", "cost-center": "ml", "beta": "", "tier": "Gold"},
        "end_user": "user-42",
        "model": "gpt-4o-mini",
        "prompt_tokens": 1200,
        "hour": 14,
        "weekday": 2,
        "usage": {"monthly_requests": {"pct": 85.5, "used": 855, "limit": 1000}},
        "plan": "pro",
    }
    ctx.update(overrides)
    return ctx


def ev(source: str, **overrides: Any) -> bool:
    return parse(source).evaluate(make_ctx(**overrides))


def parse_error(source: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        parse(source)
    return info.value


# ----------------------------------------------------------------- names and lookups


def test_tag_attribute_equality_matches() -> None:
    assert ev('tags.team == "search"')
    assert not ev('tags.team == "ads"')


def test_tag_subscript_reads_keys_that_are_not_identifiers() -> None:
    assert ev('tags["cost-center"] == "ml"')
    assert ev("tags['cost-center'] != 'finance'")


def test_in_tags_checks_key_presence_not_value() -> None:
    assert ev('"beta" in tags')  # present even though its value is empty
    assert not ev('"alpha" in tags')
    assert ev('"alpha" not in tags')


def test_missing_tag_compares_as_null_not_error() -> None:
    assert ev("tags.region == null")
    assert not ev('tags.region == "eu"')
    assert ev('tags.region != "eu"')
    assert not ev("tags.region > 3")
    assert not ev("tags.region <= 3")


def test_missing_tags_mapping_entirely_is_null() -> None:
    assert parse("tags.team == null").evaluate({})
    assert not parse('"beta" in tags').evaluate({})


def test_ordering_with_null_is_always_false() -> None:
    for op in ("<", "<=", ">", ">="):
        assert not ev(f"end_user {op} 'a'", end_user=None)
        assert not ev(f"null {op} null")


def test_null_end_user_equals_null() -> None:
    assert ev("end_user == null", end_user=None)
    assert not ev("end_user == null")


def test_usage_percentage_threshold() -> None:
    assert ev("usage.monthly_requests.pct >= 80")
    assert not ev("usage.monthly_requests.pct > 90")
    assert ev("usage.monthly_requests.used < usage.monthly_requests.limit")


def test_unlimited_monthly_limit_is_null() -> None:
    usage = {"monthly_requests": {"pct": 0.0, "used": 10, "limit": None}}
    assert ev("usage.monthly_requests.limit == null", usage=usage)
    assert not ev("usage.monthly_requests.used >= usage.monthly_requests.limit", usage=usage)


def test_missing_attribute_anywhere_in_path_is_null() -> None:
    assert ev("usage.monthly_tokens.pct == null")
    assert ev("usage.monthly_requests.pct.deeper == null")
    assert ev("model.name == null")  # attribute of a string


def test_keywords_are_allowed_as_attribute_names() -> None:
    assert ev('tags.in == "x"', tags={"in": "x"})


def test_hour_and_weekday_windows() -> None:
    business_hours = "hour >= 9 and hour < 17 and weekday < 5"
    assert ev(business_hours)
    assert not ev(business_hours, weekday=6)
    assert not ev(business_hours, hour=20)


def test_plan_and_model_comparisons() -> None:
    assert ev('plan == "pro" and model == "gpt-4o-mini"')
    assert ev("prompt_tokens > 1000")


# ----------------------------------------------------------------- operators and types


def test_equality_does_not_coerce_between_types() -> None:
    assert not ev('"3" == 3')
    assert not ev("true == 1")
    assert not ev("false == 0")
    assert not ev('null == ""')
    assert ev("1 == 1.0")
    assert ev("true == true")


def test_type_mismatch_ordering_is_false_not_error() -> None:
    assert not ev('"a" < 3')
    assert not ev('"a" >= 3')
    assert not ev("true > 0")
    assert not ev("tags.team > 1")


def test_string_ordering_is_lexicographic() -> None:
    assert ev('"apple" < "banana"')
    assert ev('model >= "gpt"')


def test_in_list_of_strings() -> None:
    assert ev('tags.team in ["search", "ads"]')
    assert not ev('tags.team in ["ads", "infra"]')
    assert ev('tags.team not in ["ads", "infra"]')


def test_in_list_uses_strict_equality() -> None:
    assert ev("hour in [13, 14, 15]")
    assert not ev('hour in ["14"]')
    assert not ev("1 in [true]")
    assert ev("null in [null, 1]")


def test_missing_value_is_not_in_any_string_list() -> None:
    assert not ev('tags.region in ["eu", "us"]')
    assert ev('tags.region not in ["eu", "us"]')


def test_list_items_may_be_expressions() -> None:
    assert ev('model in [tags.preferred, "gpt-4o-mini"]')
    assert ev("tags.team in [lower(tags.tier), tags.team]")


def test_in_string_is_substring_test() -> None:
    assert ev('"4o" in model')
    assert not ev('"claude" in model')
    assert ev('"claude" not in model')


def test_membership_type_mismatch_is_false_for_in_and_not_in() -> None:
    for source in ("3 in model", "3 not in model", "'a' in 5", "'a' not in 5"):
        assert not ev(source), source
    assert not ev('"x" in tags.region')
    assert not ev('"x" not in tags.region')
    assert not ev("null in tags")
    assert not ev("null not in tags")


def test_and_binds_tighter_than_or() -> None:
    assert ev("true or false and false")
    assert not ev("(true or false) and false")


def test_not_applies_to_whole_comparison() -> None:
    assert ev('not model == "claude"')
    assert not ev('not model == "gpt-4o-mini"')
    assert ev("not not true")


def test_long_or_chain_is_flat() -> None:
    source = " or ".join(f'tags.team == "t{i}"' for i in range(60)) + ' or tags.team == "search"'
    expr = parse(source)
    assert isinstance(expr.root, BoolOp)
    assert len(expr.root.operands) == 61
    assert expr.evaluate(make_ctx())


class RecordingTags(Mapping[str, str]):
    """A tags mapping that records which keys were read."""

    def __init__(self, data: dict[str, str]) -> None:
        self.data = data
        self.reads: list[str] = []

    def __getitem__(self, key: str) -> str:
        self.reads.append(key)
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def test_and_or_short_circuit() -> None:
    tags = RecordingTags({"a": "1", "b": "2"})
    assert parse('tags.a == "1" or tags.b == "2"').evaluate({"tags": tags})
    assert not parse('tags.a == "0" and tags.b == "2"').evaluate({"tags": tags})
    assert tags.reads == ["a", "a"]


def test_custom_mapping_context_is_traversed() -> None:
    tags = RecordingTags({"team": "search"})
    assert parse('tags.team == "search" and "team" in tags').evaluate({"tags": tags})


# ----------------------------------------------------------------- functions


def test_string_functions() -> None:
    assert ev('startswith(model, "gpt-")')
    assert ev('endswith(model, "-mini")')
    assert ev('contains(model, "4o")')
    assert ev('lower(tags.tier) == "gold"')
    assert not ev('startswith(model, "claude")')


def test_string_functions_on_null_or_non_strings_are_false() -> None:
    assert not ev('startswith(tags.region, "e")')
    assert not ev('endswith(end_user, "x")', end_user=None)
    assert not ev("contains(hour, 1)")
    assert not ev("startswith(model, 3)")


def test_lower_of_non_string_is_null() -> None:
    assert ev("lower(hour) == null")
    assert ev("lower(tags.region) == null")


def test_functions_compose() -> None:
    assert ev('startswith(lower(tags.tier), "go")')


# ----------------------------------------------------------------- literals


def test_string_escapes_are_decoded() -> None:
    assert ev(r'tags.q == "say \"hi\"\n"', tags={"q": 'say "hi"\n'})
    assert ev(r"tags.q == 'it\'s'", tags={"q": "it's"})
    assert ev(r'tags.q == "caf\u00e9\\"', tags={"q": "café\\"})
    assert ev(r'"\t" == "	"')


def test_single_and_double_quoted_strings_are_equal() -> None:
    assert ev("'abc' == \"abc\"")
    assert ev('\'say "x"\' == "say \\"x\\""')


def test_number_literals() -> None:
    assert ev("prompt_tokens == 1200")
    assert ev("1.5 > 1")
    assert ev("-2 < 0")
    assert ev("1e3 == 1000")
    assert ev("2.5E-1 == 0.25")


def test_literal_truthiness() -> None:
    assert ev("true")
    assert not ev("false")
    assert not ev("null")
    assert ev('"x"')
    assert not ev('""')
    assert not ev("0")
    assert ev("[1]")
    assert not ev("[]")


def test_bare_value_truthiness() -> None:
    assert not ev("tags.beta")  # empty string
    assert ev("tags.team")
    assert not ev("tags.region")
    assert not ev("end_user", end_user=None)


def test_constant_list_literal_folds_to_tuple() -> None:
    expr = parse('["a", ["b", 1], null]')
    assert expr.root == Const(("a", ("b", 1), None), 0)


def test_list_equality_compares_elementwise() -> None:
    assert ev('["a", 1] == ["a", 1]')
    assert not ev('["a", 1] == ["a", true]')
    assert ev("tags.ids == [1, 2]", tags={"ids": [1, 2]})


def test_trailing_comma_in_list_is_allowed() -> None:
    assert ev('"b" in ["a", "b",]')


# ----------------------------------------------------------------- API


def test_names_reports_root_names_used() -> None:
    expr = parse('tags.team == "x" or usage.monthly_requests.pct > 50 and lower(model) == "m"')
    assert expr.names() == {"tags", "usage", "model"}
    assert parse("true").names() == set()


def test_names_returns_a_copy() -> None:
    expr = parse("model == 'x'")
    expr.names().add("tags")
    assert expr.names() == {"model"}


def test_expression_keeps_source_and_ast() -> None:
    expr = parse('tags.team == "search"')
    assert expr.source == 'tags.team == "search"'
    assert str(expr) == expr.source
    assert expr.root == Compare("==", Path("tags", ("team",), 0), Const("search", 13), 10)


def test_expression_and_ast_are_immutable() -> None:
    expr = parse("hour > 3")
    with pytest.raises(dataclasses.FrozenInstanceError):
        expr.source = "x"  # type: ignore[misc]
    root = expr.root
    assert isinstance(root, Compare)
    with pytest.raises(dataclasses.FrozenInstanceError):
        root.op = "<"  # type: ignore[misc]


def test_expressions_with_same_source_are_equal() -> None:
    assert parse("hour > 3") == parse("hour > 3")
    assert parse("hour > 3") != parse("hour > 4")


def test_expression_is_reusable_across_contexts() -> None:
    expr = parse('plan == "pro"')
    assert expr.evaluate(make_ctx())
    assert not expr.evaluate(make_ctx(plan="free"))
    assert expr.evaluate(make_ctx())


def test_evaluate_returns_bool() -> None:
    assert parse("tags.team").evaluate(make_ctx()) is True
    assert parse("tags.region").evaluate(make_ctx()) is False


class ExplodingMapping(Mapping[str, Any]):
    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("boom")

    def get(self, key: str, default: Any = None) -> Any:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def test_evaluate_never_raises_on_hostile_context() -> None:
    assert parse("tags.team == 'x'").evaluate({"tags": ExplodingMapping()}) is False
    assert parse("model != 'x'").evaluate(ExplodingMapping()) is False


def test_wrongly_typed_context_values_evaluate_false() -> None:
    assert not ev('tags.team == "search"', tags="not-a-dict")
    assert not ev("usage.monthly_requests.pct > 1", usage=[1, 2])
    assert not ev('"a" in tags', tags=None)
    assert not ev("hour > 3", hour="14")


def test_objects_in_context_are_not_attribute_accessed() -> None:
    class Usage:
        secret = "s"

    assert ev("usage.secret == null", usage=Usage())
    assert ev("usage.__class__ == null", usage=Usage())


# ----------------------------------------------------------------- errors


def test_syntax_error_reports_position() -> None:
    error = parse_error('(tags.a == "x"')
    assert error.message == "expected ')'"
    assert error.position == 14
    assert str(error) == "expected ')' at position 14"


def test_expression_error_is_a_value_error_and_pickles() -> None:
    error = parse_error("hour >")
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.position) == (error.message, error.position)


@pytest.mark.parametrize(
    ("source", "message", "position"),
    [
        ("", "empty expression", 0),
        ("   ", "empty expression", 0),
        ("hour >", "unexpected end of expression", 6),
        ('model == "x" "y"', "unexpected string 'y'", 13),
        ("hour > 3)", "unexpected ')'", 8),
        ('model == "gpt', "unterminated string", 9),
        ('model == "gpt\\', "unterminated string", 9),
        (r'model == "\q"', "invalid escape '\\q'", 10),
        (r'model == "\u12"', "invalid \\u escape (expected 4 hex digits)", 10),
        ("hour > 12abc", "invalid number", 7),
        ("hour > 1e", "invalid number", 7),
        ("hour > 1e999", "number out of range", 7),
        ('model = "x"', "unexpected character '=' (use '==' to compare)", 6),
        ("hour > 1 && true", "unexpected character '&' (use 'and')", 9),
        ("!true", "unexpected character '!' (use 'not' or '!=')", 0),
        ("model == 'x' ; 1", "unexpected character ';'", 13),
        ("1 < hour < 5", "comparisons cannot be chained; combine them with 'and'", 2),
        ("model not 'x'", "expected 'in' after 'not'", 10),
        ("hour > - 'x'", "expected a number after '-'", 9),
        ('startswith(model "x")', "expected ',' or ')'", 17),
        ('["a" "b"]', "expected ',' or ']'", 5),
        ("tags.", "expected a name after '.'", 5),
        ("tags.3", "expected a name after '.'", 5),
        ("hour > (1 or", "unexpected end of expression", 12),
        ("and true", "unexpected 'and'", 0),
    ],
)
def test_syntax_errors_have_message_and_position(source: str, message: str, position: int) -> None:
    error = parse_error(source)
    assert (error.message, error.position) == (message, position)


@pytest.mark.parametrize(
    ("source", "message", "position"),
    [
        ("foo == 1", "unknown name 'foo'", 0),
        ("model == 'x' and tag.team == 'y'", "unknown name 'tag' (did you mean 'tags'?)", 17),
        ("True", "unknown name 'True' (did you mean 'true'?)", 0),
        ("lower == 'x'", "unknown name 'lower' ('lower' is a function; call it as lower(...))", 0),
        ("__import__('os')", "unknown function '__import__'", 0),
        ("upper(model) == 'X'", "unknown function 'upper'", 0),
        ("tags('x')", "unknown function 'tags'", 0),
    ],
)
def test_unknown_names_and_functions_are_rejected(source: str, message: str, position: int) -> None:
    error = parse_error(source)
    assert (error.message, error.position) == (message, position)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("lower(model, 'x')", "lower() takes 1 argument, got 2"),
        ("lower()", "lower() takes 1 argument, got 0"),
        ("startswith(model)", "startswith() takes 2 arguments, got 1"),
        ("contains(model, 'a', 'b')", "contains() takes 2 arguments, got 3"),
    ],
)
def test_wrong_arity_is_rejected_at_function_name(source: str, message: str) -> None:
    error = parse_error(source)
    assert (error.message, error.position) == (message, 0)


@pytest.mark.parametrize(
    ("source", "message", "position"),
    [
        ('usage["monthly_requests"]', "subscript is only allowed on 'tags'", 5),
        ('tags.team["x"]', "subscript is only allowed on 'tags'", 9),
        ('tags["a"]["b"]', "subscript is only allowed on 'tags'", 9),
        ('lower(model)["x"]', "subscript is only allowed on 'tags'", 12),
        ('["a"][0]', "subscript is only allowed on 'tags'", 5),
        ("tags[model]", "subscript must be a string literal", 5),
        ("tags[0]", "subscript must be a string literal", 5),
        ('tags["a" == "b"]', "expected ']'", 9),
        ('lower(model).x == "y"', "attribute access is only allowed on names", 12),
        ('"abc".x', "attribute access is only allowed on names", 5),
    ],
)
def test_subscripts_and_attributes_are_restricted(source: str, message: str, position: int) -> None:
    error = parse_error(source)
    assert (error.message, error.position) == (message, position)


def test_expression_at_length_limit_is_accepted() -> None:
    prefix = 'model == "'
    source = prefix + "x" * (MAX_SOURCE_LENGTH - len(prefix) - 1) + '"'
    assert len(source) == MAX_SOURCE_LENGTH
    assert not parse(source).evaluate(make_ctx())


def test_expression_over_length_limit_is_rejected() -> None:
    error = parse_error("true or " * 250 + "true")
    assert error.position == MAX_SOURCE_LENGTH
    assert error.message.startswith("expression too long")


def test_nesting_at_limit_is_accepted() -> None:
    assert parse("(" * MAX_NESTING + "true" + ")" * MAX_NESTING).evaluate({})
    assert parse("not " * MAX_NESTING + "true").evaluate({})  # an even number of nots
    assert parse("lower(" * MAX_NESTING + "model" + ")" * MAX_NESTING).evaluate(make_ctx())


@pytest.mark.parametrize(
    "source",
    [
        "(" * (MAX_NESTING + 1) + "true" + ")" * (MAX_NESTING + 1),
        "not " * (MAX_NESTING + 1) + "true",
        "[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1),
        "lower(" * (MAX_NESTING + 1) + "model" + ")" * (MAX_NESTING + 1),
    ],
)
def test_nesting_over_limit_is_rejected(source: str) -> None:
    error = parse_error(source)
    assert error.message == f"expression nested too deeply (max {MAX_NESTING})"


def test_deeply_nested_parentheses_fail_cleanly_not_with_recursion_error() -> None:
    error = parse_error("(" * 999)
    assert error.position == MAX_NESTING
    assert "nested too deeply" in error.message


def test_non_string_source_is_rejected() -> None:
    with pytest.raises(ExpressionError):
        parse(42)  # type: ignore[arg-type]


def test_expression_type_is_exported() -> None:
    assert isinstance(parse("true"), Expression)
