"""Run one SWAIG function call against the tool registry and decide the HTTP answer.

Status codes: 400 for a malformed call or arguments that do not match the
tool's schema, 404 for a function the registry lacks, 200 otherwise. A tool
that raises or runs past its timeout still gets 200 with
:data:`~swaig_fallback.swaig.FALLBACK_RESPONSE`, so the AI can carry on; the
trace goes to the ``livekit_fallback.swaig`` logger at ERROR and nothing about
it to the caller.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from livekit_fallback.log import swaig_logger as logger
from livekit_fallback.metrics import SWAIG_CALLS
from livekit_fallback.tools import ToolArgumentError

from .swaig import FALLBACK_RESPONSE, NEXT_NODE_KEY, BadSwaigRequest, parse_swaig_call, swaig_reply
from .swml import DEFAULT_CONTEXT

if TYPE_CHECKING:
    from .server import ServerState

__all__ = ["handle_swaig"]


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
        SWAIG_CALLS.labels("unknown", "bad_request").inc()
        return 400, {"error": str(exc)}
    if registry is None or call.function not in registry:
        SWAIG_CALLS.labels("unknown", "unknown_function").inc()
        logger.warning("SWAIG call to unknown function %r (call %s)", call.function, call.call_id)
        return 404, {"error": f"unknown function {call.function!r}"}
    spec = registry.get(call.function)
    try:
        arguments = spec.validate(call.arguments)
    except ToolArgumentError as exc:
        SWAIG_CALLS.labels(call.function, "bad_request").inc()
        return 400, {"error": f"invalid arguments: {exc}"}
    tool_state = {k: v for k, v in call.global_data.items() if k != NEXT_NODE_KEY}
    try:
        result = await asyncio.wait_for(registry.call(call.function, arguments, tool_state), state.tool_timeout)
    except asyncio.TimeoutError:
        SWAIG_CALLS.labels(call.function, "timeout").inc()
        logger.error(
            "SWAIG function %r did not finish within %.1f s (call %s); answered with a graceful reply",
            call.function,
            state.tool_timeout,
            call.call_id,
            extra={"event": "swaig_tool_timeout", "function": call.function, "call_id": call.call_id},
        )
        return 200, {"response": FALLBACK_RESPONSE}
    except Exception:
        SWAIG_CALLS.labels(call.function, "tool_error").inc()
        logger.error(
            "SWAIG function %r raised (call %s); answered with a graceful reply",
            call.function,
            call.call_id,
            exc_info=True,
            extra={"event": "swaig_tool_error", "function": call.function, "call_id": call.call_id},
        )
        return 200, {"response": FALLBACK_RESPONSE}
    reply, rejected = swaig_reply(result, contexts=_contexts(state))
    if rejected is not None:
        logger.error(
            "SWAIG function %r asked to move to %r, which is not a node of %s; the call stays where it is",
            call.function,
            rejected,
            state.vertical,
        )
    SWAIG_CALLS.labels(call.function, "ok").inc()
    return 200, reply


def _contexts(state: ServerState) -> frozenset[str]:
    try:
        names = state.resolver.snapshots.node_names(state.vertical)
    except Exception:
        logger.error("Cannot list the nodes of %s; routing requests are ignored", state.vertical, exc_info=True)
        return frozenset()
    return frozenset({*names, DEFAULT_CONTEXT})
