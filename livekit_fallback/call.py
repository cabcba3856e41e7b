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
caller left): the job is then shut down. When every model of a kind's backup
chain has failed (an unrecoverable model error) the call is ended at once, the
same way, with one ``CALL ENDED`` line at ERROR, rather than left in silence.

The models (each kind's backup chain, see :func:`~livekit_fallback.providers.build_chain`)
are built in a worker thread: plugins build HTTP clients with TLS contexts,
which takes around a hundred milliseconds the call's event loop must not
lose. Pair it with :func:`~livekit_fallback.prewarm.prewarm` as the server's
``setup_fnc`` so imports, TLS and the first resolution happen before a call.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import MutableMapping
from typing import Any, cast

from livekit.agents import AgentSession, CloseEvent, ErrorEvent, JobContext
from livekit.agents.llm import LLM
from livekit.agents.stt import STT
from livekit.agents.tts import TTS
from livekit.agents.types import NOT_GIVEN

from . import plugin as _plugin  # noqa: F401  (registers the LiveKit plugin)
from .agents import NodeAgents, build_node_agents
from .config.model import AgentConfig
from .config.resolver import Resolver, resolve_agent_config
from .console import show_opening, voice_model
from .failover import session_connect_options
from .hangup import end_call, is_ending
from .log import logger
from .prewarm import prewarm
from .providers import ModelChain, build_chain, effective_config
from .tools import ToolRegistry

__all__ = ["Call", "prewarm", "start_call"]


class Call:
    """A started call.

    Attributes:
        config: The config the call runs: the resolved one, with each model
            that could not be built replaced by the one used instead (provenance
            reason ``unbuildable``).
        agents: The node agents.
        session: The running session.
        models: Each model kind's built backup chain (a text-only console call has no STT/TTS).
    """

    def __init__(
        self,
        config: AgentConfig,
        agents: NodeAgents,
        session: AgentSession[Any],
        models: dict[str, ModelChain] | None = None,
    ) -> None:
        self.config = config
        self.agents = agents
        self.session = session
        self.models = models or {}


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
        **session_options: Passed to ``AgentSession`` (``vad``, ``turn_handling``, ``conn_options``, ...),
            except the options of ``AgentSession.start`` (``room_options``, ``room_input_options``,
            ``room_output_options``, ``record``, ...), which go to ``start``. Without
            ``conn_options`` the session uses the call-tuned attempt timeouts and retries of
            :mod:`livekit_fallback.failover` (also for a kind with a single model).

    Returns:
        The started call.

    Raises:
        UnknownToolsError: The config names tools the registry lacks.
        ModelBuildError: The LLM cannot be built, or on a real call the STT or TTS.
    """
    config = await (resolver.resolve(vertical, "livekit") if resolver else resolve_agent_config(vertical, "livekit"))
    agents = build_node_agents(config, tools=tools)
    start_options = {k: session_options.pop(k) for k in list(session_options) if k in _START_OPTIONS}
    session_options.setdefault("conn_options", session_connect_options())
    vad = session_options.get("vad")
    models = await asyncio.to_thread(_build_models, config, ctx, vad)  # TLS contexts: never on the call's loop
    config = effective_config(config, models.values())
    stt, tts = models.get("stt"), models.get("tts")  # None: text-only console
    session: AgentSession[Any] = AgentSession(
        stt=NOT_GIVEN if stt is None else cast("STT[Any]", stt.instance),
        llm=cast("LLM[Any]", models["llm"].instance),
        tts=NOT_GIVEN if tts is None else cast("TTS[Any]", tts.instance),
        userdata=userdata if userdata is not None else {},
        **session_options,
    )

    def closed(event: CloseEvent) -> None:
        if is_ending(session):  # end_call shuts the job down itself, after arranging the room's deletion
            return
        ctx.shutdown(reason=f"session closed: {event.reason.value}")

    def failed(event: ErrorEvent) -> None:
        # LiveKit keeps a session open through three unrecoverable model errors: the caller hears silence.
        if getattr(event.error, "recoverable", True) or is_ending(session):
            return
        kind = _log_call_ended(config, event.error)
        end_call(session, reason=f"every {kind} model of the backup chain failed")

    session.on("close", closed)
    session.on("error", failed)
    await session.start(agent=agents.start, room=ctx.room, **start_options)
    await show_opening(agents.start.opening)
    return Call(config, agents, session, dict(models))


_START_OPTIONS = frozenset(inspect.signature(AgentSession.start).parameters) - {"self", "agent", "room", "capture_run"}
"""What ``AgentSession.start`` takes besides the agent and the room (room options, ``record``, ...)."""


def _build_models(config: AgentConfig, ctx: JobContext, vad: Any) -> dict[str, ModelChain]:
    """Every kind's backup chain; in console mode an STT or TTS that cannot be built is left out."""
    stt = voice_model(lambda c: build_chain(c, "stt", vad=None if vad is NOT_GIVEN else vad), config, ctx)
    tts = voice_model(lambda c: build_chain(c, "tts"), config, ctx)
    models = {kind: chain for kind, chain in (("stt", stt), ("tts", tts)) if chain is not None}
    models["llm"] = build_chain(config, "llm")
    return models


def _log_call_ended(config: AgentConfig, error: Any) -> str:
    """One clear ERROR line when every entry of a model chain failed; returns the model kind (``LLM``)."""
    kind = str(getattr(error, "type", "model_error")).removesuffix("_error").upper()
    logger.error(
        "CALL ENDED: %s/%s: every %s model of the backup chain failed (%s: %s); ending the call "
        "(the room is deleted, so a phone caller is hung up). Check the providers' status and keys, "
        "and the backup models.",
        config.vertical,
        config.platform,
        kind,
        getattr(error, "label", "?"),
        getattr(error, "error", error),
        extra={
            "event": "call_ended_by_error",
            "vertical": config.vertical,
            "platform": config.platform,
            "model_kind": kind.lower(),
        },
    )
    return kind
