"""SWAIG function calls: parse SignalWire's webhook request, run the tool, build the reply.

The request (platform -> ``web_hook_url``) carries ``function``, the model's
arguments in ``argument.parsed[0]`` (else the JSON string ``argument.raw``)
and the call's ``global_data``. The tool runs with ``global_data`` as its call
state; state it changed goes back as a ``set_global_data`` action.

Routing: a tool asks for a node change by setting the state key
:data:`NEXT_NODE_KEY` (``state["next_node"] = "book"``, or
``ToolResult(..., state={"next_node": "book"})``); a ``next_node`` attribute
on the result is honoured too. The reply then carries
``{"change_context": "<node>"}`` and records the node in ``global_data``
(:data:`~swaig_fallback.swml.NODE_KEY`), but only when the target is one of
the current node's ``valid_contexts``: SignalWire lets a webhook's
``change_context`` bypass ``valid_contexts``, so the webhook enforces the
graph itself, as the LiveKit side does. A refused move leaves the call where
it is and the reply tells the model so. The routing key is never stored in
``global_data``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from livekit_fallback.config.names import TOOL_NAME
from livekit_fallback.errors import BadSwaigRequest
from livekit_fallback.tools import NEXT_NODE_KEY, ToolResult

from .bodies import excerpt, loads
from .swml import NODE_KEY

__all__ = [
    "FALLBACK_RESPONSE",
    "NEXT_NODE_KEY",
    "delegated_move_response",
    "refused_move_response",
    "BadSwaigRequest",
    "SwaigCall",
    "parse_swaig_call",
    "swaig_reply",
]

FALLBACK_RESPONSE = (
    "Sorry, I couldn't complete that just now. Apologise briefly to the caller, "
    "do not retry this function, and continue the conversation."
)
"""What the AI is told when a tool fails; nothing about the failure itself."""

_FUNCTION_NAME = TOOL_NAME


@dataclass(frozen=True)
class SwaigCall:
    """One parsed SWAIG function call.

    Attributes:
        function: The function (tool) name.
        arguments: The model's arguments (not yet checked against the tool's schema).
        global_data: The call's ``global_data``, used as the tool's state.
        call_id: SignalWire's call id, for logs (``None`` when absent).
        call_log: The conversation so far, when the SWML asks for it
            (``swaig_post_conversation``); ``None`` otherwise.
    """

    function: str
    arguments: Any
    global_data: Mapping[str, Any] = field(default_factory=dict)
    call_id: str | None = None
    call_log: list[Any] | None = None


def parse_swaig_call(payload: Any) -> SwaigCall:
    """Parse a decoded SWAIG webhook body.

    Raises:
        BadSwaigRequest: The body is not an object, ``function`` is missing or
            not a function name, or ``argument`` / ``global_data`` have the
            wrong shape or ``argument.raw`` is not JSON.
    """
    if not isinstance(payload, dict):
        raise BadSwaigRequest(f"request body must be a JSON object, got {_json_type(payload)}")
    if "function" not in payload:
        raise BadSwaigRequest("missing 'function'")
    function = payload["function"]
    if not isinstance(function, str) or not _FUNCTION_NAME.fullmatch(function):
        raise BadSwaigRequest("'function' must be a function name string")
    global_data = payload.get("global_data")
    if global_data is None:
        global_data = {}
    elif not isinstance(global_data, dict):
        raise BadSwaigRequest(f"'global_data' must be an object, got {_json_type(global_data)}")
    call_id = payload.get("call_id")
    return SwaigCall(
        function=function,
        arguments=_arguments(payload.get("argument")),
        global_data=global_data,
        call_id=call_id[:128] if isinstance(call_id, str) else None,
        call_log=payload["call_log"] if isinstance(payload.get("call_log"), list) else None,
    )


def _arguments(argument: Any) -> Any:
    if argument is None:
        return {}
    if not isinstance(argument, dict):
        raise BadSwaigRequest(f"'argument' must be an object, got {_json_type(argument)}")
    parsed = argument.get("parsed")
    if isinstance(parsed, list) and parsed:
        return parsed[0]
    if isinstance(parsed, dict):
        return parsed
    if parsed not in (None, []):
        raise BadSwaigRequest(f"'argument.parsed' must be a list, got {_json_type(parsed)}")
    raw = argument.get("raw")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if not isinstance(raw, str):
        raise BadSwaigRequest(f"'argument.raw' must be a string, got {_json_type(raw)}")
    try:
        return loads(raw, what="'argument.raw'")
    except ValueError as exc:
        raise BadSwaigRequest(str(exc)) from None


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def refused_move_response(response: str, target: object) -> str:
    """The tool's reply with a note that its move to ``target`` was refused."""
    return (
        f"{response}\n(Routing note: moving to {excerpt(target, 40)!r} is not allowed from the current step; "
        "the call stays in the current step.)"
    )


def delegated_move_response(response: str, target: object) -> str:
    """The tool's reply asking the AI to make the move itself (SignalWire checks it against the current step)."""
    return (
        f"{response}\n(Routing note: the next step is {excerpt(target, 40)!r}; change to that context now "
        "if the current step allows it, otherwise stay in the current step.)"
    )


def swaig_reply(
    result: ToolResult, *, contexts: Collection[str], delegate: Collection[str] = ()
) -> tuple[dict[str, Any], str | None]:
    """Build the webhook reply for a tool's result.

    Args:
        result: What the tool returned.
        contexts: The contexts the call may move to from where it is (the
            current node's ``valid_contexts``); any other routing target is
            refused, unless it is in ``delegate``.
        delegate: Targets that may or may not be allowed from where the call
            is (the webhook cannot tell): the reply asks the AI to move there
            itself, which SignalWire allows only along the current step's
            ``valid_contexts``. Neither moved nor refused.

    Returns:
        The reply (``{"response": ..., "action": [...]}``; ``action`` only
        when there is one) and the refused routing target, if any.
    """
    state = {k: _jsonable(v) for k, v in result.state.items() if k not in (NEXT_NODE_KEY, NODE_KEY)}
    target = result.state.get(NEXT_NODE_KEY)
    actions: list[dict[str, Any]] = []
    rejected = None
    response = result.response
    moved = None
    if target:
        if isinstance(target, str) and target in contexts:
            moved = target
            state[NODE_KEY] = target
        elif isinstance(target, str) and target in delegate:
            response = delegated_move_response(response, target)
        else:
            rejected = excerpt(target, 80)
            response = refused_move_response(response, target)
    if state:
        actions.append({"set_global_data": state})
    if result.removed:
        actions.append({"unset_global_data": [k for k in result.removed if k != NODE_KEY]})
    if moved is not None:
        actions.append({"change_context": moved})
    reply: dict[str, Any] = {"response": response}
    if result.end_call:
        actions.append({"hangup": True})
        reply["post_process"] = True
    if actions:
        reply["action"] = actions
    return reply, rejected


def _jsonable(value: Any) -> Any:
    """A JSON-safe copy: unknown objects as text, non-finite numbers as ``None``."""
    return _finite(json.loads(json.dumps(value, default=str)))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
