"""Shared helpers for the LiveKit tests: configs from the snapshot and the example registry."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

from livekit import rtc
from livekit.agents import JobContext
from livekit.agents.job import JobAcceptArguments, JobExecutorType, JobProcess, RunningJobInfo, _JobContextVar
from livekit.agents.utils import http_context
from livekit.protocol import agent as agent_proto
from livekit.protocol import models
from rich.console import Console

from livekit_fallback import AgentConfig, Resolver, SupabaseSource
from livekit_fallback.tools import ToolRegistry
from tests.openai_server import ToolCall

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
VERTICAL = "reverse_mortgage"
DEAD_DATABASE = "http://127.0.0.1:1"
"""Nothing listens on port 1: connection refused, so every component falls back."""
GREETING = "Hello, this is the reverse mortgage team. Am I speaking with Margaret?"
"""What :func:`scripted` says first."""
VOICE_KEYS = (
    "DEEPGRAM_API_KEY",
    "ELEVEN_API_KEY",
    "LIVEKIT_API_KEY",
    "LIVEKIT_API_SECRET",
    "OPENAI_API_KEY",
    "LIVEKIT_URL",
    "LIVEKIT_INFERENCE_URL",
    "LIVEKIT_FALLBACK_INFERENCE",
)
"""Provider and LiveKit keys a test removes so that only ``OPENAI_BASE_URL`` selects a model."""
ROOM = "call-4711"
"""The room of the job :func:`job_in_room` makes."""


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` (examples/ is not a package)."""
    module_name = f"_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def example_registry() -> ToolRegistry:
    """The example agent's registry with all eleven reverse-mortgage tools."""
    return load_example("reverse_mortgage_tools").build_registry()


async def snapshot_config() -> AgentConfig:
    """The vertical's LiveKit config resolved with no database (snapshot mode)."""
    return await Resolver(database=None).resolve(VERTICAL, "livekit")


async def database_down_config() -> AgentConfig:
    """The vertical's LiveKit config resolved while the database refuses connections."""
    async with Resolver(database=SupabaseSource(DEAD_DATABASE, "test-key")) as resolver:
        return await resolver.resolve(VERTICAL, "livekit")


@contextlib.asynccontextmanager
async def job_in_room(
    url: str = "", timeline: list[Any] | None = None
) -> AsyncIterator[tuple[JobContext, asyncio.Future[str]]]:
    """A real (not console) LiveKit job for room ROOM, current for the test, with an HTTP context.

    Yields the job context and a future set to the shutdown reason when the job is
    shut down; the test then runs the job's shutdown callbacks, as the worker does.
    """
    shutdown: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_shutdown(reason: str) -> None:
        if timeline is not None:
            timeline.append(("job_shutdown", reason))
        if not shutdown.done():
            shutdown.set_result(reason)

    job = agent_proto.Job(
        id="job-1", room=models.Room(name=ROOM, sid="RM_test"), type=agent_proto.JobType.JT_ROOM, metadata=""
    )
    info = RunningJobInfo(
        accept_arguments=JobAcceptArguments(identity="agent", name="", metadata=""),
        job=job,
        url=url,
        token="",
        worker_id="w-test",
        fake_job=False,
    )
    proc = JobProcess(executor_type=JobExecutorType.THREAD, user_arguments=None, http_proxy=None)
    ctx = JobContext(
        proc=proc, info=info, room=rtc.Room(), on_connect=lambda: None, on_shutdown=on_shutdown, inference_executor=None
    )  # type: ignore[arg-type]
    http_context._new_session_ctx()
    token = _JobContextVar.set(ctx)
    try:
        yield ctx, shutdown
    finally:
        _JobContextVar.reset(token)
        await ctx._on_cleanup()  # as the worker does when the job ends
        await http_context._close_http_ctx()


async def run_shutdown_callbacks(ctx: JobContext, reason: str) -> None:
    """What the worker does once a job is shut down: await every registered shutdown callback."""
    for callback in list(ctx._shutdown_callbacks):
        await callback(reason)


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
