"""``snapshot check`` finds step text that contradicts the functions the step offers, on either platform."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from livekit_fallback.snapshots.check import check_data
from tests.conftest import shipped_snapshot

pytestmark = pytest.mark.unit


def _problems(data: dict[str, Any]) -> list[str]:
    return [f"{p.field}: {p.message}" for p in check_data(data, "test.toml") if "offer" in p.message]


def test_shipped_closing_steps_agree_with_their_functions() -> None:
    """The shipped goodbye and end steps say nothing that contradicts the hangup function they offer."""
    assert _problems(shipped_snapshot()) == []
    nodes = shipped_snapshot()["nodes"]
    for name in ("goodbye", "end"):
        text = nodes[name]["instructions"].lower()
        assert "no tools" not in text and "any tool" not in text


@pytest.mark.parametrize(
    ("node", "sentence", "expected"),
    [
        ("goodbye", "You have no tools in this step.", "nodes.goodbye.instructions: on signalwire the text says"),
        ("end", "Do not ask any question or call any tool.", "nodes.end.instructions: on signalwire the text says"),
        ("verify", "Never use any function here.", "nodes.verify.instructions: on livekit the text says"),
        ("greet", "Then call book_appointment.", "nodes.greet.instructions: on livekit the text names the function"),
        ("greet", "Finish with end_call.", "nodes.greet.instructions: on livekit the text names the function"),
    ],
    ids=["denies-hangup", "negated-sentence", "denies-own-tools", "names-other-node-tool", "hangup-off-closing"],
)
def test_contradicting_step_text_is_an_error(node: str, sentence: str, expected: str) -> None:
    """A step whose text denies tools it offers, or names a function it lacks, is reported as an error."""
    data = copy.deepcopy(shipped_snapshot())
    data["nodes"][node]["instructions"] += " " + sentence
    problems = _problems(data)
    assert any(p.startswith(expected) for p in problems), problems
    assert all(p.severity == "error" for p in check_data(data, "t.toml") if "offer" in p.message)


def test_a_step_without_functions_may_say_so() -> None:
    """On LiveKit the goodbye step offers nothing, so saying it has no tools there is no contradiction."""
    data = copy.deepcopy(shipped_snapshot())
    data["nodes"]["goodbye"]["instructions"] += " You have no tools in this step."
    assert [p for p in _problems(data) if "livekit" in p] == []
