"""One LiveKit Agent per conversation node, with handoffs restricted to ``valid_contexts``.

:func:`build_node_agents` turns a resolved config and a tool registry into a
:class:`NodeAgents` mapping (node name to :class:`NodeAgent`). Each agent's
instructions are the theme, the node's role and instructions and what
completes the node; its tools are the node's registry tools plus one
``move_to_<target>`` handoff tool per ``valid_contexts`` target, so a move
outside the graph does not exist for the model. A handoff carries the
conversation history, and is refused (with what is still missing) while the
node's ``step_criteria_lk`` does not hold over the call state. Entering the
terminal node ``end`` ends the call (:func:`~livekit_fallback.hangup.end_call`:
the goodbye is spoken, the session closes and the room is deleted, which
disconnects SIP callers too).

What happened carries over a handoff: the next node starts from the previous
node's whole chat context, copied when it is entered (after the handing-off
step's tool calls and results are committed), tool calls and results included,
even of tools the next node does not have; only the ``move_to_*`` calls are
left out (the handoff itself is recorded).

Call state lives in ``session.userdata``, a dict (set to ``{}`` when unset):
the flags registry tools set, ``<node>_turn_count`` per node (user turns taken
in that node) and ``current_node``.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from livekit.agents import Agent, AgentSession, FunctionToolsExecutedEvent, RunContext, ToolError, function_tool
from livekit.agents.llm import RawFunctionTool
from livekit.agents.voice import SpeechHandle

from . import plugin as _plugin  # noqa: F401  (registers the LiveKit plugin)
from .config.criteria import Criteria, parse_criteria
from .config.graph import END_NODE
from .config.model import AgentConfig, Node
from .hangup import end_call
from .log import logger
from .tools import NEXT_NODE_KEY, ToolArgumentError, ToolRegistry, ToolSpec

__all__ = [
    "HANDOFF_PREFIX",
    "NEXT_NODE_KEY",
    "NodeAgent",
    "NodeAgents",
    "bind_tools",
    "build_node_agents",
    "call_state",
    "compose_instructions",
]

HANDOFF_PREFIX = "move_to_"
"""Handoff tools are named ``move_to_<target node>``."""


def call_state(session: AgentSession[Any]) -> MutableMapping[str, Any]:
    """The call's state: ``session.userdata``, set to a new dict when unset.

    Raises:
        TypeError: ``userdata`` is set to something that is not a mutable mapping.
    """
    try:
        state = session.userdata
    except ValueError:  # "AgentSession userdata is not set"
        state = {}
        session.userdata = state
    if not isinstance(state, MutableMapping):
        raise TypeError(
            f"node agents keep call state in session.userdata, which must be a dict, not {type(state).__name__}"
        )
    return state


def compose_instructions(config: AgentConfig, node: Node) -> str:
    """Theme, then the node's role and instructions, then what completes it and where it may go."""
    if node.step_criteria_sw:
        done = f"This step is complete when: {node.step_criteria_sw}"
    elif node.step_criteria_lk:
        done = f"This step is complete when the call state satisfies: {node.step_criteria_lk}"
    else:
        done = "This step has no completion condition."
    if node.valid_contexts:
        moves = "\n".join(
            f"- {HANDOFF_PREFIX}{t}: {_first_sentence(config.nodes[t].role)}" for t in node.valid_contexts
        )
        done += (
            "\n\nWhen this step is complete, move on by calling exactly one of these tools. "
            f"They are the only steps you can move to from here:\n{moves}"
        )
    else:
        done += "\n\nThis is the final step: there is nowhere further to move."
    return "\n\n".join(
        [
            config.theme.text.strip(),
            f"# Current step: {node.name}",
            f"## Your role\n\n{node.role.strip()}",
            f"## Instructions\n\n{node.instructions.strip()}",
            f"## Completing this step\n\n{done}",
        ]
    )


def bind_tools(registry: ToolRegistry, config: AgentConfig) -> dict[str, list[RawFunctionTool[..., Any]]]:
    """Wrap each node's registry tools as LiveKit raw-schema function tools.

    Returns:
        Node name to its tools, in the order the node lists them.

    Raises:
        UnknownToolsError: Some tool names are not registered; lists every one at once.
    """
    bound = registry.bind(config)
    wrapped: dict[str, RawFunctionTool[..., Any]] = {}
    return {
        node: [wrapped.setdefault(spec.name, _livekit_tool(registry, spec)) for spec in specs]
        for node, specs in bound.items()
    }


def _livekit_tool(registry: ToolRegistry, spec: ToolSpec) -> RawFunctionTool[..., Any]:
    name = spec.name

    async def handler(raw_arguments: dict[str, Any], context: RunContext[Any]) -> Any:
        state = call_state(context.session)
        try:
            result = await registry.call(name, raw_arguments, state)
        except ToolArgumentError as exc:
            raise ToolError(str(exc)) from None
        except Exception:
            logger.exception(
                "Tool %s raised; the model is told it failed", name, extra={"event": "tool_error", "tool": name}
            )
            raise ToolError(
                f"{name} failed. Do not guess its result; tell the caller someone will follow up."
            ) from None
        state.update(result.state)
        target = state.pop(NEXT_NODE_KEY, None)
        if result.end_call:
            end_call(context.session, reason=f"tool {name} ended the call")
        elif target is not None:
            current = context.session.current_agent
            if isinstance(current, NodeAgent):
                nxt = await current._graph._route(current, target, by=name)
                if nxt is not None:
                    # The tool's own output is None when it returns an agent; the next node
                    # gets the real result in its copy of the history.
                    nxt._carried_outputs[context.function_call.call_id] = result.response
                    return nxt
        return result.response

    return function_tool(handler, raw_schema=spec.schema())


class NodeAgent(Agent):
    """The Agent for one conversation node (its ``id`` is the node name).

    Args:
        node: The node config.
        graph: The call's agents, for handoffs and shared options.
        instructions: The composed instructions.
        tools: Registry tools and handoff tools.
    """

    def __init__(self, *, node: Node, graph: NodeAgents, instructions: str, tools: list[Any]) -> None:
        super().__init__(id=node.name, instructions=instructions, tools=tools)
        self.node = node
        self.criteria: Criteria = parse_criteria(node.step_criteria_lk)
        self.opening: SpeechHandle | None = None
        """The reply generated on entering the node (``reply_on_enter``), for consoles to show."""
        self._graph = graph
        self._handed_from: NodeAgent | None = None
        self._carried_outputs: dict[str, str] = {}

    async def on_enter(self) -> None:
        """Take over the history, record the node, then end the call (terminal node) or speak first."""
        await self._take_over_history()
        session = self.session
        state = call_state(session)
        state["current_node"] = self.node.name
        self._graph._watch_turns(session)
        if self.node.name == END_NODE:
            logger.info("Call reached the '%s' node; ending the call", END_NODE)
            end_call(session, reason=f"the call reached the '{END_NODE}' node")
        elif self._graph.reply_on_enter:
            self.opening = session.generate_reply()

    async def _take_over_history(self) -> None:
        # Copied on entry, not when the handoff tool ran: by now the whole step that handed
        # off (every tool call and result of it, and any reply) is in the previous chat context.
        source, self._handed_from = self._handed_from, None
        carried, self._carried_outputs = self._carried_outputs, {}
        if source is None:
            return
        history = source.chat_ctx.copy(exclude_instructions=True)
        # Handoff calls say nothing the handoff item does not (refusals concern the old node).
        moves = {i.call_id for i in history.items if i.type == "function_call" and i.name.startswith(HANDOFF_PREFIX)}
        # copy() shares the items with the previous node's context: replace, never mutate.
        history.items[:] = [
            item.model_copy(update={"output": carried[item.call_id]})
            if item.type == "function_call_output" and item.call_id in carried and not item.output
            else item
            for item in history.items
            if item.type not in ("function_call", "function_call_output") or item.call_id not in moves
        ]
        await self.update_chat_ctx(history, exclude_invalid_function_calls=False)


class NodeAgents(Mapping[str, NodeAgent]):
    """The node agents of one call, by node name; build a new set per call.

    Attributes:
        config: The config they were built from.
        reply_on_enter: Each node (the start node too) speaks first when entered.
    """

    def __init__(self, config: AgentConfig, reply_on_enter: bool = True) -> None:
        self.config = config
        self.reply_on_enter = reply_on_enter
        self._agents: dict[str, NodeAgent] = {}
        self._watched: weakref.WeakSet[AgentSession[Any]] = weakref.WeakSet()

    @property
    def start(self) -> NodeAgent:
        """The agent of the config's start node: pass it to ``session.start(agent=...)``."""
        return self._agents[self.config.start_node]

    def __getitem__(self, name: str) -> NodeAgent:
        return self._agents[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._agents)

    def __len__(self) -> int:
        return len(self._agents)

    def _watch_turns(self, session: AgentSession[Any]) -> None:
        # session.run() (console --text, tests) never calls on_user_turn_completed, so user
        # turns are counted from the one event both text and voice input emit.
        if session in self._watched:
            return
        self._watched.add(session)

        def added(event: Any) -> None:
            if getattr(event.item, "role", None) != "user":
                return
            state = call_state(session)
            node = state.get("current_node")
            if isinstance(node, str) and node in self._agents:
                key = f"{node}_turn_count"
                state[key] = int(state.get(key) or 0) + 1

        def executed(event: FunctionToolsExecutedEvent) -> None:
            # A response that moved and also called other tools would get a reply from the old
            # node (LiveKit answers the other tools' outputs) and then the new node's opening:
            # two agent turns in a row. The new node answers instead; it sees those outputs.
            if self.reply_on_enter and event.has_agent_handoff and event.has_tool_reply:
                event.cancel_tool_reply()
                logger.debug("Handoff with other tool calls: the next node replies, the old one does not")

        session.on("conversation_item_added", added)
        session.on("function_tools_executed", executed)

    def _handoff_tool(self, source_node: Node, target: str) -> RawFunctionTool[..., Any]:
        role = _first_sentence(self.config.nodes[target].role)
        schema = {
            "name": f"{HANDOFF_PREFIX}{target}",
            "description": f"Move the call to the '{target}' step ({role}). Only call this once the current "
            "step is complete; the conversation so far carries over.",
            "parameters": {"type": "object", "properties": {}, "required": []},
        }

        async def handler(raw_arguments: dict[str, Any], context: RunContext[Any]) -> Any:
            current = self._agents[source_node.name]
            state = call_state(context.session)
            missing = current.criteria.unmet(state)
            if missing:
                hint = f" ({source_node.step_criteria_sw})" if source_node.step_criteria_sw else ""
                logger.info("Handoff %s -> %s refused; unmet: %s", source_node.name, target, missing)
                return (
                    f"Not moved: the '{source_node.name}' step is not complete yet{hint}. "
                    f"Still missing: {'; '.join(missing)}. Stay in this step and continue it with the caller."
                )
            return await self._hand_off(current, target)

        return function_tool(handler, raw_schema=schema)

    async def _hand_off(self, current: NodeAgent, target: str) -> NodeAgent:
        nxt = self._agents[target]
        nxt._handed_from = current
        logger.info("Handoff %s -> %s", current.node.name, target)
        return nxt

    async def _route(self, current: NodeAgent, target: object, *, by: str) -> NodeAgent | None:
        """Route a tool's ``next_node`` request; only ``valid_contexts`` targets are honoured.

        The tool decided, so the step criteria are not checked (as SignalWire's
        ``change_context`` action does not check them either).
        """
        if isinstance(target, str) and target in current.node.valid_contexts:
            return await self._hand_off(current, target)
        logger.warning(
            "Tool %s asked to move from %r to %r, which is not in its valid_contexts; staying",
            by,
            current.node.name,
            target,
            extra={"event": "route_refused", "tool": by},
        )
        return None


def build_node_agents(config: AgentConfig, *, tools: ToolRegistry, reply_on_enter: bool = True) -> NodeAgents:
    """Build one :class:`NodeAgent` per node of a resolved config.

    Args:
        config: A resolved config (any mix of database and fallback components).
        tools: The tool registry; every tool a node names must be registered.
        reply_on_enter: Each node speaks first when entered (the greeting at
            session start, the next step's opening after a handoff).

    Returns:
        The agents by node name; start the session with ``.start``.

    Raises:
        UnknownToolsError: The config names tools the registry lacks (all listed).
        ValueError: A registry tool is named like a handoff tool.
    """
    clashes = sorted(spec.name for spec in tools if spec.name.startswith(HANDOFF_PREFIX))
    if clashes:
        raise ValueError(f"tool names {clashes} clash with handoff tools ({HANDOFF_PREFIX}<node>)")
    bound = bind_tools(tools, config)
    agents = NodeAgents(config, reply_on_enter=reply_on_enter)
    for name, node in config.nodes.items():
        handoffs = [agents._handoff_tool(node, target) for target in node.valid_contexts]
        agents._agents[name] = NodeAgent(
            node=node, graph=agents, instructions=compose_instructions(config, node), tools=[*bound[name], *handoffs]
        )
    return agents


def _first_sentence(text: str) -> str:
    flat = " ".join(text.split())
    head, dot, _ = flat.partition(". ")
    return head.rstrip(".") if dot or flat.endswith(".") else flat
