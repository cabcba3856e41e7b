"""Does a step's text agree with the functions the step offers, on each platform?

A step whose text says it has no tools while the platform offers it one, or
that tells the model to call a function the step does not offer, leaves the
model to pick which instruction to break; on SignalWire that decides whether
the phone hangs up. The offered functions are the node's ``tools`` on both
platforms, plus :data:`~livekit_fallback.config.graph.HANGUP_TOOL` in the
closing steps on SignalWire. Function names are matched as whole words;
names without an underscore are not looked for, since they read as ordinary
words.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from ..config.graph import HANGUP_TOOL, offers_hangup
from ..config.keys import Platform
from ..config.model import Node

__all__ = ["offered_functions", "step_text_problems"]

_DENIAL = re.compile(
    r"\b(?:(?:you have|there are|with) no (?:tools|functions)"
    r"|no (?:tools|functions) (?:are )?(?:available|offered)"
    r"|(?:do not|don't|never|must not|cannot) (?:call|use) (?:any|a) (?:tools?|functions?)"
    r"|without (?:calling|using) (?:any )?(?:tools?|functions?))\b",
    re.IGNORECASE,
)
_NEGATION = re.compile(r"\b(?:do not|don't|never|must not|should not)\b", re.IGNORECASE)
_ANY_TOOL = re.compile(r"\b(?:call|use)(?:ing)? any (?:tools?|functions?)\b", re.IGNORECASE)


def _denial(text: str) -> str | None:
    """The words denying tools, directly or in a negated sentence ("do not ... or call any tool")."""
    found = _DENIAL.search(text)
    if found:
        return found.group(0)
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        if _NEGATION.search(sentence) and (match := _ANY_TOOL.search(sentence)):
            return match.group(0)
    return None


def offered_functions(node: Node, platform: Platform) -> list[str]:
    """The functions ``node``'s step offers the model on ``platform``."""
    offered = list(node.tools)
    if platform == "signalwire" and offers_hangup(node.name, node.valid_contexts) and HANGUP_TOOL not in offered:
        offered.append(HANGUP_TOOL)
    return offered


def step_text_problems(node: Node, platform: Platform, known_functions: Collection[str]) -> list[str]:
    """What in ``node``'s role and instructions contradicts what its step offers on ``platform``.

    Args:
        node: The node, as the resolver builds it for ``platform``.
        platform: ``livekit`` or ``signalwire``.
        known_functions: Every function name the agent has (the nodes' tools),
            looked for in the text; the hangup function is always looked for.
    """
    text = " ".join(f"{node.role}\n{node.instructions}".split())
    offered = offered_functions(node, platform)
    problems = []
    denial = _denial(text)
    if denial and offered:
        problems.append(f"on {platform} the text says {denial!r}, but the step offers {offered}")
    for name in sorted({*known_functions, HANGUP_TOOL} - set(offered)):
        if "_" in name and re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text):
            problems.append(f"on {platform} the text names the function {name!r}, which this step does not offer")
    return problems
