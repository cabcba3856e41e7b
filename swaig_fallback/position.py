"""Where a call is when one of its functions is called, as far as the webhook can know.

SignalWire does not tell a webhook which step a call is in, and the AI's own
moves along ``valid_contexts`` are not reported. What a function call carries
narrows it down:

1. the function's name: the AI can only call a function its current step
   offers, so the call is in a node offering it;
2. ``global_data[current_node]``: the node the webhook last moved the call to
   (the start node at first); since then the AI has only moved along
   ``valid_contexts``, so the call is in a node reachable from it;
3. the call log, when the SWML asks SignalWire to send it
   (``swaig_post_conversation``): its step-tracing entries name the context
   the call entered last.

:class:`Position` holds the nodes the call may be in. A move allowed from all
of them is made by the webhook; one allowed from none is refused; one allowed
from some is neither made nor refused on a guess: the AI is asked to make it
itself, and SignalWire lets it only along the current step's ``valid_contexts``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from livekit_fallback.config.graph import reachable_from
from livekit_fallback.config.model import AgentConfig

from .swml import DEFAULT_CONTEXT, NODE_KEY

__all__ = ["Position", "locate", "logged_context"]

_MAX_LOG_ENTRIES = 2000


@dataclass(frozen=True)
class Position:
    """The nodes a call may be in, and what said so.

    Attributes:
        candidates: The nodes the call may be in (one when known).
        source: ``call_log``, ``function`` (the function's nodes, narrowed by
            the webhook's last move) or ``unknown``.
    """

    candidates: frozenset[str]
    source: str

    @property
    def node(self) -> str | None:
        """The node, when only one is possible."""
        return next(iter(self.candidates)) if len(self.candidates) == 1 else None

    def moves(self, config: AgentConfig) -> tuple[frozenset[str], frozenset[str]]:
        """The moves allowed from every candidate, and those allowed from only some."""
        if not self.candidates:
            return frozenset(), frozenset()
        targets = [set(config.nodes[name].valid_contexts) & set(config.nodes) for name in self.candidates]
        everywhere = set.intersection(*targets)
        return frozenset(everywhere), frozenset(set.union(*targets) - everywhere)


def logged_context(call_log: Any, config: AgentConfig) -> str | None:
    """The node of the context the call log says the call entered last, or ``None``."""
    if not isinstance(call_log, list):
        return None
    for entry in reversed(call_log[-_MAX_LOG_ENTRIES:]):
        context = entry.get("context") if isinstance(entry, Mapping) else None
        if isinstance(context, str) and context:
            node = config.start_node if context == DEFAULT_CONTEXT else context
            return node if node in config.nodes else None
    return None


def locate(config: AgentConfig, function: str, global_data: Mapping[str, Any], call_log: Any = None) -> Position:
    """Where the call that called ``function`` may be (see the module docstring)."""
    tracked = global_data.get(NODE_KEY)
    anchor = tracked if isinstance(tracked, str) and tracked in config.nodes else config.start_node
    edges = {name: list(node.valid_contexts) for name, node in config.nodes.items()}
    reachable = reachable_from(edges, anchor)
    offering = {name for name, node in config.nodes.items() if function in node.tools}
    logged = logged_context(call_log, config)
    if logged is not None and logged in reachable and (logged in offering or not offering):
        return Position(frozenset({logged}), "call_log")
    if offering:
        return Position(frozenset(offering & reachable or offering), "function")
    return Position(frozenset(reachable), "unknown")
