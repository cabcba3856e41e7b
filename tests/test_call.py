"""start_call in LiveKit's console and on a real job, against a local OpenAI-compatible server."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from livekit.agents.testing import fake_job_context
from livekit.agents.voice import room_io

from livekit_fallback import Resolver
from livekit_fallback.call import start_call
from livekit_fallback.errors import ModelBuildError
from tests.helpers_livekit import (
    GREETING,
    VERTICAL,
    VOICE_KEYS,
    TextConsole,
    example_registry,
    job_in_room,
    load_example,
    scripted,
)
from tests.openai_server import OpenAICompatibleServer

pytestmark = pytest.mark.integration


@pytest.fixture
def only_an_llm_endpoint(monkeypatch: pytest.MonkeyPatch, clean_env: None) -> Iterator[None]:
    """No STT, TTS, Inference or OpenAI key: only OPENAI_BASE_URL (set by the test)."""
    for name in VOICE_KEYS:
        monkeypatch.delenv(name, raising=False)
    yield


async def test_console_call_runs_text_only_and_shows_the_greeting(
    only_an_llm_endpoint: None, text_console: TextConsole, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In console with only an LLM endpoint the call runs text-only, prints the greeting and hands off."""
    async with OpenAICompatibleServer(scripted) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        async with Resolver(database=None) as resolver:
            with fake_job_context() as ctx:
                call = await start_call(ctx, VERTICAL, tools=example_registry(), resolver=resolver)
                try:
                    assert call.session.stt is None and call.session.tts is None
                    assert GREETING in text_console.buffer.getvalue()
                    await call.session.run(user_input="Yes, speaking.")
                    assert call.session.current_agent.id == "verify"
                finally:
                    await call.session.aclose()
                    await call.session.llm.aclose()  # type: ignore[union-attr]
                    await ctx._on_cleanup()  # as the worker does when a job ends
    assert server.models_requested == ["gpt-5"] * 3


async def test_a_real_call_without_voice_keys_is_an_error(only_an_llm_endpoint: None) -> None:
    """On a real job (not console) an STT that cannot be built stops the call with ModelBuildError."""
    async with Resolver(database=None) as resolver, job_in_room() as (ctx, _shutdown):
        with pytest.raises(ModelBuildError, match="STT model 'deepgram/nova-3:multi'"):
            await start_call(ctx, VERTICAL, tools=example_registry(), resolver=resolver)


async def test_the_quickstart_entrypoint_runs_in_console_with_only_an_llm_endpoint(
    only_an_llm_endpoint: None, text_console: TextConsole, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/quickstart.py's entrypoint, in a console job with only OPENAI_BASE_URL, greets text-only."""
    load_example("reverse_mortgage_tools")
    monkeypatch.setitem(sys.modules, "reverse_mortgage_tools", sys.modules["_example_reverse_mortgage_tools"])
    quickstart = load_example("quickstart")
    async with OpenAICompatibleServer(scripted) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        with fake_job_context() as ctx:
            try:
                await quickstart.entrypoint(ctx)
                assert GREETING in text_console.buffer.getvalue()
            finally:
                session = ctx._primary_agent_session
                if session is not None:
                    await session.aclose()
                    await session.llm.aclose()
                await ctx._on_cleanup()
    assert server.models_requested == ["gpt-5"]


async def test_start_call_passes_livekits_room_and_session_options_through(
    only_an_llm_endpoint: None, text_console: TextConsole, monkeypatch: pytest.MonkeyPatch
) -> None:
    """room_options and record reach AgentSession.start; without conn_options the call-tuned ones apply."""
    async with OpenAICompatibleServer(scripted) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        options = room_io.RoomOptions(close_on_disconnect=False, participant_identity="caller-7")
        async with Resolver(database=None) as resolver:
            with fake_job_context() as ctx:
                call = await start_call(
                    ctx, VERTICAL, tools=example_registry(), resolver=resolver, room_options=options, record=True
                )
                try:
                    assert call.session._opts.recording_options["transcript"] is True  # a console job records nothing
                    assert call.session.conn_options.llm_conn_options.timeout == 2.0
                    assert call.session.conn_options.tts_conn_options.max_retry == 0
                finally:
                    await call.session.aclose()
                    await call.session.llm.aclose()  # type: ignore[union-attr]
                    await ctx._on_cleanup()
