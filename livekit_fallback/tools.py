"""The tool registry: one plain Python callable per tool name, for both platforms.

A node config names its tools (``verify_caller_identity``, ``book_appointment``);
the registry maps each name to a description, a JSON-schema for its arguments
and a handler. The LiveKit binding wraps handlers as raw-schema function tools;
the SWAIG server calls them from webhooks. Handlers take plain arguments and
the call's state, and return plain results, so neither platform leaks into them.

Example::

    registry = ToolRegistry()

    @registry.tool(
        description="Record that the caller confirmed their identity.",
        parameters={"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    )
    def verify_caller_identity(args, state):
        state["verified"] = True
        return f"Verified {args['name']}."
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from .config.model import RESERVED_TOOL_NAMES, AgentConfig
from .config.names import TOOL_NAME
from .errors import ToolArgumentError, ToolBusyError, UnknownToolError, UnknownToolsError
from .tool_threads import tool_threads

__all__ = [
    "NEXT_NODE_KEY",
    "ToolArgumentError",
    "ToolBusyError",
    "ToolRegistry",
    "ToolResult",
    "ToolSpec",
    "UnknownToolError",
    "UnknownToolsError",
]

_NAME = TOOL_NAME
NEXT_NODE_KEY = "next_node"
"""A tool that sets this call-state key to a node name routes the call there, on both platforms."""

PLATFORM_FUNCTION_NAMES = frozenset(
    {
        "hangup",
        "startup_hook",
        "hangup_hook",
        "summarize_conversation",
        "check_time",
        "wait_seconds",
        "wait_for_user",
        "adjust_response_latency",
        "get_visual_input",
        "get_ideal_strategy",
    }
)
"""Names SignalWire or its SDK treat specially (hooks, native functions, internal fillers)."""

RESERVED_NAMES = RESERVED_TOOL_NAMES | PLATFORM_FUNCTION_NAMES
"""Names never registrable: SignalWire's native step tools and the names above."""

Handler = Callable[[dict[str, Any], MutableMapping[str, Any]], Any | Awaitable[Any]]


@dataclass(frozen=True)
class ToolResult:
    """What a tool returns, normalised.

    Attributes:
        response: Text for the model (never spoken verbatim by the platforms).
        state: Call-state updates the tool made (flags read by ``step_criteria_lk``).
        end_call: The call should end after this reply.
        removed: Call-state keys the tool deleted.
    """

    response: str
    state: Mapping[str, Any] = field(default_factory=dict)
    end_call: bool = False
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class ToolSpec:
    """One registered tool.

    Attributes:
        name: The tool name as node configs spell it.
        description: What the tool does, for the model.
        parameters: JSON schema (``type: object``) of the arguments.
        handler: ``handler(args, state)``, sync or async; returns ``str``,
            a JSON-serialisable value, or a :class:`ToolResult`. Sync handlers
            run on a thread of their own so a blocking one cannot stall the event loop.
    """

    name: str
    description: str
    parameters: Mapping[str, Any]
    handler: Handler = field(repr=False, compare=False)

    def schema(self) -> dict[str, Any]:
        """The OpenAI-style function schema: ``{name, description, parameters}``."""
        return {"name": self.name, "description": self.description, "parameters": dict(self.parameters)}

    def validate(self, arguments: Any) -> dict[str, Any]:
        """Check arguments against the schema.

        Raises:
            ToolArgumentError: Not an object, or a field is missing, extra or of the wrong type.
        """
        if not isinstance(arguments, dict):
            raise ToolArgumentError(f"{self.name}: arguments must be a JSON object, got {type(arguments).__name__}")
        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(self.parameters).iter_errors(arguments)
        )
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path)
            raise ToolArgumentError(f"{self.name}: {f'{where}: ' if where else ''}{error.message}")
        return arguments


class ToolRegistry:
    """Maps tool names to handlers; shared by the LiveKit and SignalWire sides."""

    def __init__(self, tools: Iterable[ToolSpec] = ()) -> None:
        self._tools: dict[str, ToolSpec] = {}
        for spec in tools:
            self.add(spec)

    def add(self, spec: ToolSpec) -> ToolSpec:
        """Register a tool.

        Raises:
            ValueError: The name is not an identifier, is reserved by SignalWire, is
                already registered, or the schema is not an object schema.
        """
        if not _NAME.match(spec.name):
            raise ValueError(f"tool name {spec.name!r} must match {_NAME.pattern}")
        if spec.name in RESERVED_NAMES:
            raise ValueError(
                f"tool name {spec.name!r} is reserved by SignalWire or its SDK (a native function or hook); "
                "choose another name"
            )
        if spec.name in self._tools:
            raise ValueError(f"tool {spec.name!r} is already registered")
        params = dict(spec.parameters)
        if params.get("type") != "object" or not isinstance(params.get("properties"), dict):
            raise ValueError(f"tool {spec.name!r}: parameters must be {{'type': 'object', 'properties': {{...}}}}")
        jsonschema.Draft202012Validator.check_schema(params)
        self._tools[spec.name] = spec
        return spec

    def tool(
        self, name: str | None = None, *, description: str, parameters: Mapping[str, Any] | None = None
    ) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`add`; the function name is the tool name by default."""

        def decorate(handler: Handler) -> Handler:
            self.add(
                ToolSpec(
                    name=name or handler.__name__,
                    description=description,
                    parameters=parameters or {"type": "object", "properties": {}},
                    handler=handler,
                )
            )
            return handler

        return decorate

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[ToolSpec]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def get(self, name: str) -> ToolSpec:
        """The tool registered under ``name``.

        Raises:
            UnknownToolError: No such tool.
        """
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownToolError(name) from None

    def bind(self, config: AgentConfig) -> dict[str, tuple[ToolSpec, ...]]:
        """Resolve every node's tool names to specs.

        Raises:
            UnknownToolsError: Listing every unregistered name and the nodes using it.
        """
        missing: dict[str, list[str]] = {}
        bound: dict[str, tuple[ToolSpec, ...]] = {}
        for node_name, node in config.nodes.items():
            for tool_name in node.tools:
                if tool_name not in self._tools:
                    missing.setdefault(tool_name, []).append(node_name)
            bound[node_name] = tuple(self._tools[t] for t in node.tools if t in self._tools)
        if missing:
            raise UnknownToolsError(missing)
        return bound

    async def call(self, name: str, arguments: Any, state: MutableMapping[str, Any]) -> ToolResult:
        """Validate arguments, run the handler and normalise its result.

        Raises:
            UnknownToolError: No such tool.
            ToolArgumentError: Arguments do not match the schema.
            ToolBusyError: A sync handler was not started: the tool threads are taken
                (see :mod:`livekit_fallback.tool_threads`).
            Exception: Whatever the handler raises (callers turn it into a
                graceful reply and log it).
        """
        spec = self.get(name)
        args = spec.validate(arguments)
        before = _snapshot_state(state)
        if inspect.iscoroutinefunction(spec.handler):
            result = await spec.handler(args, state)
        else:
            # A blocking sync handler (a CRM call, a file read) must not stall every
            # other call served by this event loop, so it runs on a thread of its own.
            result = await tool_threads().run(name, functools.partial(spec.handler, args, state))
            if inspect.isawaitable(result):
                result = await result
        changed = {k: v for k, v in state.items() if k not in before or before[k] != v}
        removed = tuple(k for k in before if k not in state)
        if isinstance(result, ToolResult):
            return ToolResult(
                result.response,
                {**changed, **result.state},
                result.end_call,
                tuple(dict.fromkeys((*removed, *result.removed))),
            )
        if isinstance(result, str):
            return ToolResult(result, changed, removed=removed)
        return ToolResult(json.dumps(result, default=str), changed, removed=removed)


def _snapshot_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the call state to diff against; per key, deep where possible."""
    before: dict[str, Any] = {}
    for key, value in state.items():
        try:
            before[key] = copy.deepcopy(value)
        except Exception:  # locks, sockets, clients: compare by identity instead
            before[key] = value
    return before
