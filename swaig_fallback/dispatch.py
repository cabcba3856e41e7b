"""Run one SWAIG function call against the tool registry and decide the HTTP answer.

Reply rules (as SignalWire's own SDK answers): every authenticated request
that names a function gets HTTP 200 with a ``response`` for the model, even
when the function is unknown, its arguments are wrong, or the tool fails or
times out; each of those is logged (WARNING for the caller's mistakes, ERROR
for tool failures) and tells the model nothing internal. Only a body that is
not a SWAIG request at all (not an object, no valid ``function``) gets 400.

The built-in :data:`~swaig_fallback.swml.HANGUP_FUNCTION` answers with a
hangup action and ``post_process`` so the goodbye is spoken first.

Routing follows the graph from where the AI has taken the call
(:mod:`swaig_fallback.position`): a tool's move is made when every step the
call can be in allows it, refused when none does, and otherwise handed to the
AI, whose own move SignalWire checks against the current step.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from livekit_fallback.config.resolver import ConfigUnavailableError
from livekit_fallback.log import log_safe
from livekit_fallback.log import swaig_logger as logger
from livekit_fallback.metrics import SWAIG_CALLS
from livekit_fallback.tools import ToolArgumentError, ToolBusyError

from .bodies import excerpt
from .position import Position, locate
from .state import ServerState
from .swaig import FALLBACK_RESPONSE, NEXT_NODE_KEY, BadSwaigRequest, SwaigCall, parse_swaig_call, swaig_reply
from .swml import HANGUP_FUNCTION, NODE_KEY

__all__ = ["HANGUP_RESPONSE", "handle_swaig", "hangup_reply"]

HANGUP_RESPONSE = "The call ends after this reply: say a short, warm goodbye now."
_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")


def hangup_reply() -> dict[str, Any]:
    """The reply that ends the call once the AI has spoken (``FunctionResult(..., post_process=True).hangup()``)."""
    return {"response": HANGUP_RESPONSE, "action": [{"hangup": True}], "post_process": True}


async def handle_swaig(state: ServerState, payload: Any) -> tuple[int, dict[str, Any]]:
    """Handle a decoded SWAIG request body.

    Args:
        state: The server's shared state (registry, resolver, timeouts).
        payload: The decoded JSON body.

    Returns:
        The HTTP status and the JSON reply.
    """
    registry = state.registry
    try:
        call = parse_swaig_call(payload)
    except BadSwaigRequest as exc:
        function = payload.get("function") if isinstance(payload, dict) else None
        if not isinstance(function, str) or not _NAME.fullmatch(function):
            SWAIG_CALLS.labels("unknown", "bad_request").inc()
            return 400, {"error": str(exc)}
        label = function if registry is not None and function in registry else "unknown"
        SWAIG_CALLS.labels(label, "bad_request").inc()
        logger.warning("SWAIG call to %s was malformed: %s", function, log_safe(str(exc)))
        return 200, {"response": f"The call to {function} was malformed ({exc}). Fix the arguments and call again."}
    where = f"call {log_safe(call.call_id, 64)}" if call.call_id else "no call id"
    if call.function == HANGUP_FUNCTION:
        SWAIG_CALLS.labels(HANGUP_FUNCTION, "ok").inc()
        logger.info("SWAIG %s: the AI ends the call (%s)", HANGUP_FUNCTION, where)
        return 200, hangup_reply()
    if registry is None or call.function not in registry:
        SWAIG_CALLS.labels("unknown", "unknown_function").inc()
        logger.warning("SWAIG call to unknown function %s (%s)", call.function, where)
        return 200, {"response": f"Function '{call.function}' not found"}
    spec = registry.get(call.function)
    try:
        arguments = spec.validate(call.arguments)
    except ToolArgumentError as exc:
        SWAIG_CALLS.labels(call.function, "bad_request").inc()
        logger.warning("SWAIG function %s got invalid arguments (%s): %s", call.function, where, log_safe(str(exc)))
        message = excerpt(str(exc), 160)
        return 200, {"response": f"Invalid arguments: {message}. Fix the arguments and call {call.function} again."}
    tool_state = {k: v for k, v in call.global_data.items() if k not in (NEXT_NODE_KEY, NODE_KEY)}
    try:
        result = await asyncio.wait_for(registry.call(call.function, arguments, tool_state), state.tool_timeout)
    except asyncio.TimeoutError:
        SWAIG_CALLS.labels(call.function, "timeout").inc()
        logger.error(
            "SWAIG function %s did not finish within %.1f s (%s); answered with a graceful reply",
            call.function,
            state.tool_timeout,
            where,
            extra={"event": "swaig_tool_timeout", "function": call.function, "call_id": log_safe(call.call_id, 64)},
        )
        return 200, {"response": FALLBACK_RESPONSE}
    except ToolBusyError as exc:
        SWAIG_CALLS.labels(call.function, "shed").inc()
        logger.warning(
            "SWAIG function %s was shed, not started (%s): %d tool threads running, %d of them for this tool "
            "(hung tools hold theirs until they return); answered with a graceful reply",
            call.function,
            where,
            exc.running,
            exc.running_for_tool,
            extra={"event": "swaig_tool_shed", "function": call.function, "running": exc.running},
        )
        return 200, {"response": FALLBACK_RESPONSE}
    except Exception:
        SWAIG_CALLS.labels(call.function, "tool_error").inc()
        logger.error(
            "SWAIG function %s raised (%s); answered with a graceful reply",
            call.function,
            where,
            exc_info=True,
            extra={"event": "swaig_tool_error", "function": call.function, "call_id": log_safe(call.call_id, 64)},
        )
        return 200, {"response": FALLBACK_RESPONSE}
    position = await _position(state, call)
    allowed, unsure = position[1]
    reply, rejected = swaig_reply(result, contexts=allowed, delegate=unsure)
    target = result.state.get(NEXT_NODE_KEY)
    if rejected is not None:
        logger.warning(
            "SWAIG function %s asked to move from %s to %s, which no step the call can be in allows "
            "(valid_contexts %s) (%s); the call stays where it is",
            call.function,
            _where_text(position[0]),
            rejected,
            sorted(allowed),
            where,
            extra={"event": "swaig_route_refused", "function": call.function, "target": rejected},
        )
    elif isinstance(target, str) and target in unsure:
        logger.info(
            "SWAIG function %s asked to move to %s, allowed from some of the steps the call can be in (%s) but "
            "not all; the AI is asked to make the move, which SignalWire allows only from a step that lists it (%s)",
            call.function,
            target,
            _where_text(position[0]),
            where,
            extra={"event": "swaig_route_delegated", "function": call.function, "target": target},
        )
    SWAIG_CALLS.labels(call.function, "ok").inc()
    return 200, reply


async def _position(
    state: ServerState, call: SwaigCall
) -> tuple[Position | None, tuple[frozenset[str], frozenset[str]]]:
    """Where the call may be (:func:`~swaig_fallback.position.locate`); the moves allowed from all / some of it."""
    try:
        config = await state.routing.resolve(state.resolver, state.vertical)
    except ConfigUnavailableError:
        logger.error("No config for %s; routing requests are refused", state.vertical)
        return None, (frozenset(), frozenset())
    position = locate(config, call.function, call.global_data, call.call_log)
    return position, position.moves(config)


def _where_text(position: Position | None) -> str:
    if position is None or not position.candidates:
        return "an unknown step"
    if position.node is not None:
        return f"{position.node} (from the {position.source.replace('_', ' ')})"
    return "one of " + ", ".join(sorted(position.candidates))
