"""Ending a call deletes its room through LiveKit's room service, after the goodbye (local Twirp stand-in)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit.agents import AgentSession

from livekit_fallback.agents import build_node_agents
from livekit_fallback.tools import ToolResult
from tests.fake_llm import Call, FakeLLM
from tests.helpers_livekit import ROOM, example_registry, job_in_room, run_shutdown_callbacks, snapshot_config
from tests.livekit_room_service import RoomServiceCall, RoomServiceStandIn
from tests.test_agents import registry_with

pytestmark = pytest.mark.integration

API_KEY = "lk-test-key"
API_SECRET = "lk-test-secret-" + "s" * 32
GOODBYE = "Thank you for your time, Margaret. Goodbye!"


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
