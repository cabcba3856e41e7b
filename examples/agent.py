"""A complete reverse-mortgage LiveKit agent whose prompts, routing and models come from livekit-fallback.

The configuration (theme, nine nodes, STT/LLM/TTS) is resolved per call from
Supabase (``SUPABASE_URL`` / ``SUPABASE_SERVICE_KEY``), or from the shipped
snapshot when the database is unset, down or holds bad data.

Run it (LiveKit Agents 1.8.9)::

    python examples/agent.py console --text    # typed conversation in this terminal
    python examples/agent.py console           # microphone and speakers
    python -m livekit.agents start examples/agent.py   # production worker (LIVEKIT_URL, ...)
    python examples/agent.py download-files    # at image build: checks snapshots, stores the database's config

LiveKit Agents 1.8.9 marks the built-in ``console`` deprecated in favour of the
LiveKit CLI's ``lk agent console`` (run in the agent's directory), which has
its own terminal UI; the built-in one is the only one with ``--text``.

The built-in ``console`` needs PortAudio's system library (Debian:
``libportaudio2``) and a terminal. The LLM needs ``OPENAI_API_KEY``, or
``OPENAI_BASE_URL`` pointing at a local OpenAI-compatible endpoint, or LiveKit
Inference credentials. In console mode an STT or TTS that cannot be built (no
keys) is left out and the agent runs text-only; on a real call that is an
error. Reaching the ``end`` node hangs up: the room is deleted, which
disconnects a SIP caller.
"""

from __future__ import annotations

import json
import os
from typing import Any

from livekit.agents import AgentServer, JobContext, cli
from reverse_mortgage_tools import DEMO_LEAD, build_registry

from livekit_fallback.call import start_call

VERTICAL = os.environ.get("AGENT_VERTICAL", "reverse_mortgage")

server = AgentServer()


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
    await start_call(ctx, VERTICAL, tools=build_registry(), userdata=_call_state(ctx))


if __name__ == "__main__":
    cli.run_app(server)
