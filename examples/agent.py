"""A complete reverse-mortgage LiveKit agent whose prompts, routing and models come from livekit-fallback.

The configuration (theme, nine nodes, STT/LLM/TTS) is resolved per call from
Supabase (``SUPABASE_URL`` / ``SUPABASE_SERVICE_KEY``), or from the shipped
snapshot when the database is unset, down or holds bad data.

Run it (LiveKit Agents 1.8.9)::

    python examples/agent.py console --text    # typed conversation in this terminal
    python examples/agent.py console           # microphone and speakers
    python -m livekit.agents start examples/agent.py   # production worker (LIVEKIT_URL, ...)
    python -m livekit.agents download-files    # at image build: checks snapshots, stores the database's config

Each job process is prewarmed (``AgentServer(setup_fnc=prewarm)``): the
provider plugins are imported, the TLS context is built and the config is
resolved once before the call arrives, so the call's resolution is a cache hit.

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
from reverse_mortgage_tools import build_registry, demo_state, find_lead

from livekit_fallback.call import prewarm, start_call

VERTICAL = os.environ.get("AGENT_VERTICAL", "reverse_mortgage")

# prewarm runs in each job process before its call: plugins, TLS, the first resolution.
server = AgentServer(setup_fnc=prewarm)


def _call_state(ctx: JobContext) -> dict[str, Any]:
    """Initial call state: the lead from the job's metadata, the demo lead in console only.

    The dispatch metadata may carry the lead (JSON ``{"lead": {...}}``) or the
    caller's number (``{"phone": "+1..."}``, looked up like the SignalWire
    side does). A real call with neither has no lead; only a console (fake)
    job gets the demo lead, flagged as a demo.
    """
    try:
        metadata = json.loads(ctx.job.metadata or "{}")
    except ValueError:
        metadata = {}
    if not isinstance(metadata, dict):
        metadata = {}
    lead = metadata.get("lead")
    if isinstance(lead, dict):
        return {"lead": dict(lead)}
    found = find_lead(metadata.get("phone") if isinstance(metadata.get("phone"), str) else None)
    if found is not None:
        return {"lead": found}
    return demo_state() if ctx.is_fake_job() else {}


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    """One call: resolve the config, build models and node agents, run until the call ends."""
    await start_call(ctx, VERTICAL, tools=build_registry(), userdata=_call_state(ctx))


if __name__ == "__main__":
    cli.run_app(server)
