"""start_call in LiveKit's console and on a real job, against a local OpenAI-compatible server."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from livekit.agents.cli import cli as lk_cli
from livekit.agents.testing import fake_job_context
from rich.console import Console

from livekit_fallback import Resolver
from livekit_fallback.call import start_call
from livekit_fallback.errors import ModelBuildError
from tests.helpers_livekit import VERTICAL, example_registry, job_in_room, load_example
from tests.openai_server import OpenAICompatibleServer, ToolCall

pytestmark = pytest.mark.integration

GREETING = "Hello, this is the reverse mortgage team. Am I speaking with Margaret?"
VOICE_KEYS = ("DEEPGRAM_API_KEY", "ELEVEN_API_KEY", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "OPENAI_API_KEY")


def scripted(body: dict[str, Any]) -> Any:
    """Greets, hands off to verify on the caller's first reply, then opens verify."""
    messages = body["messages"]
    if "# Current step: verify" in messages[0]["content"]:
        return "To protect your privacy, may I have your full name?"
    if messages[-1]["role"] == "user":
        return ToolCall("move_to_verify")
    return GREETING


class TextConsole:
    """Stands in for LiveKit's text-mode console UI: enabled, in text mode, printing to a buffer."""

    def __init__(self, session_directory: Path) -> None:
        self.enabled = True
        self.io_acquired = False
        self.record = False
        self._tcp_transport = None
        self.session_directory = session_directory
        self.console_mode = "text"
        self.buffer = io.StringIO()
        self.console = Console(file=self.buffer, width=120)

    def acquire_io(self, *, loop: Any, session: Any) -> None:
        """As LiveKit's console does in text mode: the session gets no audio in or out."""
        self.io_acquired = True
        session.input.audio = None
        session.output.audio = None


@pytest.fixture
def only_an_llm_endpoint(monkeypatch: pytest.MonkeyPatch, clean_env: None) -> Iterator[None]:
    """No STT, TTS, Inference or OpenAI key: only OPENAI_BASE_URL (set by the test)."""
    for name in VOICE_KEYS:
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def text_console(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> TextConsole:
    """LiveKit's console singleton replaced by a text-mode stand-in for the test."""
    console = TextConsole(tmp_path)
    monkeypatch.setattr(lk_cli.AgentsConsole, "_instance", console)
    return console


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
