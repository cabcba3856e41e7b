"""Node-graph checks shared by validation, ``snapshot check`` and ``snapshot graph``.

A node config is only usable if its transitions make sense within the whole
graph: every ``valid_contexts`` target exists, the start node exists, and the
terminal node ``end`` leads nowhere. Reachability problems (a node nobody can
enter, a node from which ``end`` cannot be reached) are reported but are not
fatal: the agent still answers calls.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "DEFAULT_NODE_NAMES",
    "END_NODE",
    "HANGUP_TOOL",
    "START_NODE",
    "offers_hangup",
    "graph_errors",
    "reachable_from",
    "unreachable_nodes",
    "dead_end_nodes",
    "unknown_targets",
]

START_NODE = "greet"
"""The node every call starts in."""

END_NODE = "end"
"""The terminal node: reaching it ends the call."""

HANGUP_TOOL = "end_call"
"""The built-in SignalWire function that hangs up after the AI's reply (offered by the closing steps)."""


def offers_hangup(name: str, valid_contexts: Iterable[str]) -> bool:
    """True for the end node and every node moving to it: on SignalWire, the steps offering :data:`HANGUP_TOOL`."""
    return name == END_NODE or END_NODE in valid_contexts


DEFAULT_NODE_NAMES: tuple[str, ...] = (
    "greet",
    "verify",
    "qualify",
    "quote",
    "answer",
    "objections",
    "book",
    "goodbye",
    "end",
)
"""The nine conversation nodes, in conversation order."""


def graph_errors(
    edges: Mapping[str, Sequence[str]],
    *,
    start: str = START_NODE,
    end: str = END_NODE,
) -> list[str]:
    """List every structural problem of a node graph (empty when valid).

    Args:
        edges: Node name to its ``valid_contexts`` targets.
        start: The start node, which must exist.
        end: The terminal node, which must exist and have no targets.
    """
    problems: list[str] = []
    if start not in edges:
        problems.append(f"start node {start!r} is missing")
    if end not in edges:
        problems.append(f"terminal node {end!r} is missing")
    elif edges[end]:
        problems.append(f"terminal node {end!r} must have no valid_contexts, has {list(edges[end])}")
    for name, targets in edges.items():
        for target in targets:
            if target not in edges:
                problems.append(f"node {name!r}: valid_contexts target {target!r} is not a node")
            elif target == name:
                problems.append(f"node {name!r}: valid_contexts lists the node itself")
    return problems


def reachable_from(edges: Mapping[str, Sequence[str]], start: str) -> set[str]:
    """Return the nodes reachable from ``start`` (including it) along existing edges."""
    seen = {start} if start in edges else set()
    queue = deque(seen)
    while queue:
        for target in edges.get(queue.popleft(), ()):
            if target in edges and target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


def unreachable_nodes(edges: Mapping[str, Sequence[str]], start: str = START_NODE) -> list[str]:
    """Nodes that no path from ``start`` enters, in the graph's order."""
    seen = reachable_from(edges, start)
    return [name for name in edges if name not in seen]


def dead_end_nodes(edges: Mapping[str, Sequence[str]], end: str = END_NODE) -> list[str]:
    """Nodes from which ``end`` cannot be reached, in the graph's order."""
    reverse: dict[str, list[str]] = {name: [] for name in edges}
    for name, targets in edges.items():
        for target in targets:
            if target in reverse:
                reverse[target].append(name)
    can_finish = reachable_from(reverse, end)
    return [name for name in edges if name not in can_finish]


def unknown_targets(targets: Iterable[str], known: Iterable[str]) -> list[str]:
    """Targets that are not among ``known`` node names, in the given order."""
    known_set = set(known)
    return [t for t in targets if t not in known_set]
