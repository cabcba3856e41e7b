"""Hung sync tools through the real webhook server: a cheap tool still answers, and hung ones are bounded and shed."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest

from livekit_fallback.config.resolver import Resolver
from livekit_fallback.tool_threads import PER_TOOL_THREADS, ToolThreads, tool_threads
from livekit_fallback.tools import ToolBusyError, ToolRegistry
from swaig_fallback import FALLBACK_RESPONSE
from tests.test_swaig_server import documented_payload, serving

HUNG = 40


def _registry(release: threading.Event) -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool(description="A CRM lookup whose backend never answers.")
    def lookup_crm(args: dict[str, Any], state: dict[str, Any]) -> str:
        release.wait(60)
        return "late"

    @registry.tool(description="Answers at once.")
    def check_hours(args: dict[str, Any], state: dict[str, Any]) -> str:
        return "We are open nine to five."

    return registry


async def _wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_cheap_tool_answers_while_40_hung_tools_are_in_flight(caplog: pytest.LogCaptureFixture) -> None:
    """With 40 hung calls in flight a cheap tool answers within 2 s; hung calls past the tool's share are shed."""
    caplog.set_level(logging.WARNING, logger="livekit_fallback.swaig")
    release = threading.Event()
    threads = tool_threads()
    before = threads.running
    async with Resolver() as resolver, serving(resolver, _registry(release)) as server:
        try:
            hung = [
                asyncio.create_task(server.post("/swaig", documented_payload("lookup_crm", {}))) for _ in range(HUNG)
            ]
            await _wait_for(lambda: threads.running_for("lookup_crm") == PER_TOOL_THREADS)
            started = time.monotonic()
            status, reply, _ = await server.post("/swaig", documented_payload("check_hours", {}))
            elapsed = time.monotonic() - started
            assert (status, reply) == (200, {"response": "We are open nine to five."})
            assert elapsed < 2.0
            shed = [t for t in hung if t.done()]
            assert len(shed) == HUNG - PER_TOOL_THREADS
            assert all(t.result()[1] == {"response": FALLBACK_RESPONSE} for t in shed)
            said = [r for r in caplog.records if getattr(r, "event", None) == "swaig_tool_shed"]
            assert len(said) == HUNG - PER_TOOL_THREADS and "shed" in said[0].getMessage()
        finally:
            release.set()
        replies = await asyncio.gather(*hung)
        assert sum(body == {"response": "late"} for _, body, _ in replies) == PER_TOOL_THREADS
    await _wait_for(lambda: threads.running == before)


async def test_timed_out_threads_are_bounded_and_freed_when_they_return() -> None:
    """A call past the thread limit is refused at once; a timed-out call's thread frees its slot when it returns."""
    pool = ToolThreads(limit=2, per_tool=2)
    release = threading.Event()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(pool.run("slow", lambda: release.wait(10)), 0.05)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(pool.run("slow", lambda: release.wait(10)), 0.05)
    assert pool.running == 2
    with pytest.raises(ToolBusyError, match="2 tool threads are running"):
        await pool.run("other", lambda: "never started")
    release.set()
    await _wait_for(lambda: pool.running == 0)
    assert await pool.run("other", lambda: "now it runs") == "now it runs"
