"""A complete reverse-mortgage LiveKit agent whose prompts, routing and models come from livekit-fallback.

The configuration (theme, nine nodes, STT/LLM/TTS) is resolved per call from
Supabase (``SUPABASE_URL`` / ``SUPABASE_SERVICE_KEY``), or from the shipped
snapshot when the database is unset, down or holds bad data.

Run it::

    python examples/agent.py console --text   # typed conversation in this terminal
    python examples/agent.py console          # microphone and speakers
    python examples/agent.py dev              # against a LiveKit server (LIVEKIT_URL, ...)
    python examples/agent.py start            # production worker

Console mode needs PortAudio's system library (Debian: ``libportaudio2``) and a
terminal. The LLM needs ``OPENAI_API_KEY``, or ``OPENAI_BASE_URL`` pointing at a
local OpenAI-compatible endpoint, or LiveKit Inference credentials. In
``console`` mode, an STT or TTS that cannot be built (no keys) is left out and
the agent runs text-only; everywhere else that is an error.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from livekit.agents import AgentServer, AgentSession, JobContext, cli
from reverse_mortgage_tools import DEMO_LEAD, build_registry

from livekit_fallback import resolve_agent_config
from livekit_fallback.agents import build_node_agents
from livekit_fallback.providers import ModelBuildError, build_llm, build_stt, build_tts

VERTICAL = os.environ.get("AGENT_VERTICAL", "reverse_mortgage")
logger = logging.getLogger("reverse_mortgage_agent")

server = AgentServer()


def _optional(build: Any, config: Any, ctx: JobContext) -> Any:
    """Build a voice model; in console mode a missing one means text-only instead of an error."""
    try:
        return build(config)
    except ModelBuildError as exc:
        if not ctx.is_fake_job():
            raise
        logger.warning("Running text-only in console: %s", exc)
        return None


def _call_state(ctx: JobContext) -> dict[str, Any]:
    """Initial call state: the lead from the job's metadata (JSON ``{"lead": {...}}``) or the demo lead."""
    try:
        metadata = json.loads(ctx.job.metadata or "{}")
    except ValueError:
        metadata = {}
    lead = metadata.get("lead") if isinstance(metadata, dict) else None
    return {"lead": dict(lead) if isinstance(lead, dict) else dict(DEMO_LEAD)}


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    """One call: resolve the config, build models and node agents, run until the call ends."""
    config = await resolve_agent_config(VERTICAL, "livekit")
    agents = build_node_agents(config, tools=build_registry())
    session = AgentSession(
        stt=_optional(build_stt, config, ctx),
        llm=build_llm(config),
        tts=_optional(build_tts, config, ctx),
        userdata=_call_state(ctx),
    )
    session.on("close", lambda _event: ctx.shutdown(reason="call ended"))
    await session.start(agent=agents.start, room=ctx.room)


if __name__ == "__main__":
    cli.run_app(server)
