"""One call from a LiveKit job: resolve the config, build models and node agents, start the session.

:func:`start_call` is the whole entrypoint of a typical agent::

    @server.rtc_session()
    async def entrypoint(ctx: JobContext) -> None:
        await start_call(ctx, "reverse_mortgage", tools=registry)

It works the same on a phone call and in LiveKit's console: in console mode a
voice model that cannot be built is left out (text-only, so only an LLM
endpoint is needed) and, in text mode, the start node's greeting is printed.
The call ends when the ``end`` node is reached (the room is deleted, which
hangs up SIP callers) or when the session closes for another reason (the
caller left): the job is then shut down.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from livekit.agents import AgentSession, CloseEvent, JobContext
from livekit.agents.types import NOT_GIVEN

from . import plugin as _plugin  # noqa: F401  (registers the LiveKit plugin)
from .agents import NodeAgents, build_node_agents
from .config.model import AgentConfig
from .config.resolver import Resolver, resolve_agent_config
from .console import show_opening, voice_model
from .hangup import is_ending
from .providers import build_llm, build_stt, build_tts
from .tools import ToolRegistry

__all__ = ["Call", "start_call"]


class Call:
    """A started call.

    Attributes:
        config: The resolved config.
        agents: The node agents.
        session: The running session.
    """

    def __init__(self, config: AgentConfig, agents: NodeAgents, session: AgentSession[Any]) -> None:
        self.config = config
        self.agents = agents
        self.session = session


async def start_call(
    ctx: JobContext,
    vertical: str,
    *,
    tools: ToolRegistry,
    userdata: MutableMapping[str, Any] | None = None,
    resolver: Resolver | None = None,
    **session_options: Any,
) -> Call:
    """Resolve the vertical's LiveKit config and start its node agents in the job's room.

    Args:
        ctx: The job.
        vertical: The business vertical (``reverse_mortgage``).
        tools: The tool registry; every tool the config names must be in it.
        userdata: The initial call state (a new dict by default).
        resolver: The resolver (the process-wide default one by default).
        **session_options: Passed to ``AgentSession`` (``vad``, ``turn_handling``, ...).

    Returns:
        The started call.

    Raises:
        UnknownToolsError: The config names tools the registry lacks.
        ModelBuildError: The LLM cannot be built, or on a real call the STT or TTS.
    """
    config = await (resolver.resolve(vertical, "livekit") if resolver else resolve_agent_config(vertical, "livekit"))
    agents = build_node_agents(config, tools=tools)
    stt, tts = voice_model(build_stt, config, ctx), voice_model(build_tts, config, ctx)  # None: text-only console
    session: AgentSession[Any] = AgentSession(
        stt=NOT_GIVEN if stt is None else stt,
        llm=build_llm(config),
        tts=NOT_GIVEN if tts is None else tts,
        userdata=userdata if userdata is not None else {},
        **session_options,
    )

    def closed(event: CloseEvent) -> None:
        if is_ending(session):  # end_call shuts the job down itself, after arranging the room's deletion
            return
        ctx.shutdown(reason=f"session closed: {event.reason.value}")

    session.on("close", closed)
    await session.start(agent=agents.start, room=ctx.room)
    await show_opening(agents.start.opening)
    return Call(config, agents, session)
