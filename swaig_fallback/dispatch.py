"""Run one SWAIG function call against the tool registry and decide the HTTP answer.

Reply rules (as SignalWire's own SDK answers): every authenticated request
that names a function gets HTTP 200 with a ``response`` for the model, even
when the function is unknown, its arguments are wrong, or the tool fails or
times out; each of those is logged (WARNING for the caller's mistakes, ERROR
for tool failures) and tells the model nothing internal. Only a body that is
not a SWAIG request at all (not an object, no valid ``function``) gets 400.

The built-in :data:`~swaig_fallback.swml.HANGUP_FUNCTION` answers with a
hangup action and ``post_process`` so the goodbye is spoken first.

Routing follows the graph: the call's node is tracked in ``global_data``
(:data:`~swaig_fallback.swml.NODE_KEY`), and a tool's move is honoured only
to that node's ``valid_contexts``.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from livekit_fallback.config.model import AgentConfig
from livekit_fallback.config.resolver import ConfigUnavailableError
from livekit_fallback.log import log_safe
from livekit_fallback.log import swaig_logger as logger
from livekit_fallback.metrics import SWAIG_CALLS
from livekit_fallback.tools import ToolArgumentError, ToolBusyError

from .bodies import excerpt
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
    node, allowed = await _allowed_moves(state, call)
    reply, rejected = swaig_reply(result, contexts=allowed)
    if rejected is not None:
        logger.warning(
            "SWAIG function %s asked to move from %s to %s, which is not among its valid_contexts %s (%s); "
            "the call stays where it is",
            call.function,
            node or "an unknown node",
            rejected,
            sorted(allowed),
            where,
            extra={"event": "swaig_route_refused", "function": call.function, "target": rejected},
        )
    SWAIG_CALLS.labels(call.function, "ok").inc()
    return 200, reply


async def _allowed_moves(state: ServerState, call: SwaigCall) -> tuple[str | None, frozenset[str]]:
    """The call's current node and the nodes it may move to.

    The node is ``global_data[NODE_KEY]`` when that node offers the called
    function; otherwise (the AI moved on its own along ``valid_contexts``) the
    nodes offering the function tell: one such node is the current node, and
    with several only moves allowed from all of them are allowed.
    """
    try:
        config = await state.resolver.resolve(state.vertical, "signalwire")
    except ConfigUnavailableError:
        logger.error("No config for %s; routing requests are refused", state.vertical)
        return None, frozenset()
    tracked = call.global_data.get(NODE_KEY)
    offering = [name for name, node in config.nodes.items() if call.function in node.tools]
    if isinstance(tracked, str) and tracked in config.nodes and (tracked in offering or not offering):
        return tracked, _targets(config, [tracked])
    if len(offering) == 1:
        return offering[0], _targets(config, offering)
    return None, _targets(config, offering)


def _targets(config: AgentConfig, nodes: list[str]) -> frozenset[str]:
    if not nodes:
        return frozenset()
    common = set.intersection(*(set(config.nodes[name].valid_contexts) for name in nodes))
    return frozenset(name for name in common if name in config.nodes)
