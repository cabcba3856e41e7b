"""The smallest complete agent: the README's quickstart, verbatim.

Run it with only an LLM endpoint (no STT/TTS keys: text-only)::

    OPENAI_BASE_URL=http://127.0.0.1:8911/v1 python examples/quickstart.py console --text
"""

from livekit.agents import AgentServer, JobContext, cli
from reverse_mortgage_tools import build_registry

from livekit_fallback.call import prewarm, start_call

server = AgentServer(setup_fnc=prewarm)


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    await start_call(ctx, "reverse_mortgage", tools=build_registry())


if __name__ == "__main__":
    cli.run_app(server)
