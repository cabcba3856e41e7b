"""Ending a call deletes its room through LiveKit's room service, after the goodbye (local Twirp stand-in)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit import rtc
from livekit.agents import AgentSession, JobContext
from livekit.agents.job import JobAcceptArguments, JobExecutorType, JobProcess, RunningJobInfo, _JobContextVar
from livekit.agents.utils import http_context
from livekit.protocol import agent as agent_proto
from livekit.protocol import models

from livekit_fallback.agents import build_node_agents
from livekit_fallback.tools import ToolResult
from tests.fake_llm import Call, FakeLLM
from tests.helpers_livekit import example_registry, snapshot_config
from tests.livekit_room_service import RoomServiceCall, RoomServiceStandIn
from tests.test_agents import registry_with

pytestmark = pytest.mark.integration

API_KEY = "lk-test-key"
API_SECRET = "lk-test-secret-" + "s" * 32
ROOM = "call-4711"
GOODBYE = "Thank you for your time, Margaret. Goodbye!"


@contextlib.asynccontextmanager
async def job_in_room(url: str, timeline: list[Any]) -> AsyncIterator[tuple[JobContext, asyncio.Future[str]]]:
    """A real (not console) LiveKit job for room ROOM, current for the test, with an HTTP context.

    Yields the job context and a future set to the shutdown reason when the job is
    shut down; the test then runs the job's shutdown callbacks, as the worker does.
    """
    shutdown: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_shutdown(reason: str) -> None:
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


@pytest.fixture
async def room_service(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RoomServiceStandIn]:
    """The room service stand-in, with the job's LiveKit credentials pointing at it."""
    timeline: list[Any] = []
    async with RoomServiceStandIn(API_KEY, API_SECRET, on_call=lambda call: timeline.append(call)) as service:
        service.timeline = timeline  # type: ignore[attr-defined]
        monkeypatch.setenv("LIVEKIT_URL", service.url)
        monkeypatch.setenv("LIVEKIT_API_KEY", API_KEY)
        monkeypatch.setenv("LIVEKIT_API_SECRET", API_SECRET)
        yield service


def record_speech(session: AgentSession[Any], timeline: list[Any]) -> None:
    """Append assistant messages and the session's close to the timeline, in order."""

    def added(event: Any) -> None:
        if event.item.type == "message" and event.item.role == "assistant":
            timeline.append(("said", event.item.text_content))

    session.on("conversation_item_added", added)
    session.on("close", lambda event: timeline.append(("closed", event.reason.value)))


async def test_reaching_end_deletes_the_room_after_the_goodbye(room_service: RoomServiceStandIn) -> None:
    """Goodbye -> end: the goodbye is said, the session closes, then DeleteRoom names the call's room."""
    timeline: list[Any] = room_service.timeline  # type: ignore[attr-defined]
    config = await snapshot_config()
    agents = build_node_agents(config, tools=example_registry())
    fake = FakeLLM(["Is there anything else I can help with?", [GOODBYE, Call("move_to_end")]])
    async with job_in_room(room_service.url, timeline) as (ctx, shutdown):
        session: AgentSession[Any] = AgentSession(llm=fake, userdata={})
        record_speech(session, timeline)
        async with session:
            await session.start(agents["goodbye"])
            await session.run(user_input="No, that's all. Thank you!")
            reason = await asyncio.wait_for(shutdown, 5)
        await run_shutdown_callbacks(ctx, reason)
    assert [c.room for c in room_service.calls] == [ROOM] and room_service.rejected == []
    kinds = [t[0] if isinstance(t, tuple) else t.method for t in timeline]
    assert kinds.index("closed") < kinds.index("job_shutdown") < kinds.index("DeleteRoom")
    assert kinds.index("said") < kinds.index("closed") and ("said", GOODBYE) in timeline
    assert reason == "the call reached the 'end' node"


async def test_a_tools_end_call_deletes_the_room(room_service: RoomServiceStandIn) -> None:
    """A tool returning ToolResult(end_call=True) ends the call the same way: DeleteRoom after the reply."""
    timeline: list[Any] = room_service.timeline  # type: ignore[attr-defined]
    config = await snapshot_config()
    registry = registry_with(config, lambda args, state: ToolResult("Recorded; end the call.", end_call=True))
    agents = build_node_agents(config, tools=registry, reply_on_enter=False)
    fake = FakeLLM([Call("mark_wrong_person"), "Sorry to have bothered you. Goodbye."])
    async with job_in_room(room_service.url, timeline) as (ctx, shutdown):
        session: AgentSession[Any] = AgentSession(llm=fake, userdata={})
        record_speech(session, timeline)
        async with session:
            await session.start(agents.start)
            await session.run(user_input="You have the wrong number.")
            reason = await asyncio.wait_for(shutdown, 5)
        await run_shutdown_callbacks(ctx, reason)
    assert [c.room for c in room_service.calls] == [ROOM]
    assert ("said", "Sorry to have bothered you. Goodbye.") in timeline
    assert all(not isinstance(t, RoomServiceCall) for t in timeline[: timeline.index(("closed", "user_initiated"))])
    assert reason == "tool mark_wrong_person ended the call"


async def test_without_a_job_only_the_session_closes() -> None:
    """Driven outside a job (no room), reaching end closes the session and calls no room service."""
    config = await snapshot_config()
    agents = build_node_agents(config, tools=example_registry())
    fake = FakeLLM(["Anything else?", ["Goodbye!", Call("move_to_end")]])
    closed = asyncio.Event()
    async with AgentSession(llm=fake, userdata={}) as session:
        session.on("close", lambda event: closed.set())
        await session.start(agents["goodbye"])
        await session.run(user_input="No, bye.")
        await asyncio.wait_for(closed.wait(), 5)
