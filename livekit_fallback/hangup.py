"""Ending a call: finish the goodbye, then delete the room so every participant is disconnected.

``session.shutdown()`` alone closes the agent's session but leaves the room, so
a SIP caller stays on an open line. LiveKit's own end-call tool
(``livekit.agents.beta.tools.EndCallTool``) ends calls by deleting the room
once the session has closed; :func:`end_call` does the same for the ``end``
node and for tools returning ``ToolResult(end_call=True)``:

1. the session drains (the goodbye already generated is spoken) and closes;
2. on close, room deletion is registered as a job shutdown callback and the
   job is shut down, so the worker deletes the room (LiveKit's ``DeleteRoom``),
   which disconnects every participant, phone callers included.

Outside a job (``AgentSession`` driven directly, as in tests) only the session
closes. In console mode LiveKit skips the deletion itself (there is no room).
"""

from __future__ import annotations

import weakref
from typing import Any

from livekit.agents import AgentSession, CloseEvent, get_job_context

from .log import logger

__all__ = ["end_call", "is_ending"]

_ENDING: weakref.WeakSet[AgentSession[Any]] = weakref.WeakSet()


def is_ending(session: AgentSession[Any]) -> bool:
    """:func:`end_call` was called for this session (its close is the call's planned end)."""
    return session in _ENDING


def end_call(session: AgentSession[Any], *, reason: str, delete_room: bool = True) -> None:
    """End the call after the current speech: close the session, then delete the room.

    Calling it again for the same session does nothing.

    Args:
        session: The call's session.
        reason: Why the call ends (logged, and the job's shutdown reason).
        delete_room: Delete the room once the session has closed (disconnects
            SIP callers); ``False`` only leaves the session and job.
    """
    if session in _ENDING:
        return
    _ENDING.add(session)

    def closed(event: CloseEvent) -> None:
        try:
            job = get_job_context()
        except RuntimeError:  # no job: a session driven directly
            return
        room = job.job.room.name or None
        if delete_room:

            async def delete() -> None:
                logger.info("Deleting room %s: the call ended (%s)", room, reason, extra={"event": "room_deleted"})
                await job.delete_room(room)

            job.add_shutdown_callback(delete)
        job.shutdown(reason=reason)

    session.once("close", closed)
    logger.info("Ending the call: %s", reason, extra={"event": "call_ending"})
    session.shutdown(drain=True)
