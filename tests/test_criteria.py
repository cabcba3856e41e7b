"""The safe step_criteria_lk evaluator: accepted grammar, rejected grammar, evaluation."""

from __future__ import annotations

import pytest

from livekit_fallback import CriteriaError, parse_criteria


@pytest.mark.parametrize(
    ("expression", "state", "expected"),
    [
        ("verified == True", {"verified": True}, True),
        ("verified == True", {"verified": False}, False),
        ("verified == True", {}, False),
        ("greet_turn_count >= 2 or greeted == True", {"greet_turn_count": 2}, True),
        ("greet_turn_count >= 2 or greeted == True", {"greet_turn_count": 1}, False),
        ("greet_turn_count >= 2 or greeted == True", {"greeted": True}, True),
        ("not wrong_person", {}, True),
        ("not wrong_person", {"wrong_person": True}, False),
        ("qualified == True or qualified == False", {"qualified": False}, True),
        ("qualified == True or qualified == False", {}, False),
        ("1 <= turns < 3", {"turns": 2}, True),
        ("1 <= turns < 3", {"turns": 3}, False),
        ("status != 'done'", {"status": "open"}, True),
        ("balance > -1", {"balance": 0}, True),
        ("balance > -1.5", {"balance": -2}, False),
        ("", {}, True),
    ],
)
def test_evaluates_whitelisted_expressions(expression: str, state: dict, expected: bool) -> None:
    """Names, constants, comparisons and and/or/not evaluate over the call state."""
    assert parse_criteria(expression).evaluate(state) is expected


def test_unset_counter_compares_false_instead_of_raising() -> None:
    """A missing counter reads as None and an ordering comparison with it is simply unmet."""
    criteria = parse_criteria("greet_turn_count >= 1")
    assert criteria.evaluate({}) is False
    assert criteria.unmet({}) == ["greet_turn_count >= 1"]


def test_unmet_lists_each_false_side_of_an_and() -> None:
    """For 'a and b' every unmet side is reported, so the model knows what is missing."""
    criteria = parse_criteria("verified == True and qualified == True and age >= 62")
    assert criteria.unmet({"qualified": True}) == ["verified == True", "age >= 62"]
    assert criteria.unmet({"verified": True, "qualified": True, "age": 70}) == []


def test_names_are_collected() -> None:
    """The state names an expression reads are exposed, sorted."""
    assert parse_criteria("b == 1 or a == 2").names == ("a", "b")


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("__import__('os').system('x')", "Call"),
        ("verified.__class__", "Attribute"),
        ("x + 1 > 2", "BinOp"),
        ("[1][0] == 1", "Subscript"),
        ("lambda: 1", "Lambda"),
        ("x in (1, 2)", "In is not allowed"),
        ("x is None", "Is is not allowed"),
        ("-x > 1", "only 'not'"),
        ("--1 < x", "only 'not'"),
        ("-True < x", "only 'not'"),
        ("_secret == 1", "may not start with '_'"),
        ("x == b'bytes'", "constant"),
        ("verified ==", "not valid syntax"),
        ("a = 1", "not valid syntax"),
        ("x == 1" + " or x == 1" * 100, "longer than"),
    ],
)
def test_rejects_everything_outside_the_whitelist(expression: str, fragment: str) -> None:
    """Calls, attributes, arithmetic, subscripts and the like are refused with a reason."""
    with pytest.raises(CriteriaError, match=None) as info:
        parse_criteria(expression)
    assert fragment in str(info.value)
