"""Threads for synchronous tool handlers: one per running call, bounded, so a hung tool holds only its own slot.

A sync handler (a CRM lookup, a file read) runs off the event loop. Python
cannot stop a thread, so a handler that hangs past its caller's timeout keeps
its thread until it returns. With a fixed pool, enough hung calls fill every
worker and a cheap tool then queues behind them until its own timeout. Here
each call gets a thread of its own, started at once, and two limits bound what
hung handlers can hold:

- at most :data:`TOOL_THREADS` handler threads run in the process;
- at most :data:`PER_TOOL_THREADS` of them for one tool, so one hanging
  backend cannot take every thread.

A call beyond either limit is not queued: it is shed at once with
:class:`~livekit_fallback.errors.ToolBusyError`, which the caller answers
gracefully and logs, while every other tool keeps its threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from .errors import ToolBusyError

__all__ = ["PER_TOOL_THREADS", "TOOL_THREADS", "ToolThreads", "tool_threads"]

TOOL_THREADS = 64
"""Most sync tool handlers running at once in a process (hung ones included)."""

PER_TOOL_THREADS = 32
"""Most running handlers of one tool, so a hung backend leaves threads for the others."""


class ToolThreads:
    """Runs sync tool handlers on threads of their own, within the two limits.

    Args:
        limit: Most handler threads at once.
        per_tool: Most handler threads of one tool at once.
    """

    def __init__(self, limit: int = TOOL_THREADS, per_tool: int = PER_TOOL_THREADS) -> None:
        if limit < 1 or per_tool < 1:
            raise ValueError("tool thread limits must be at least 1")
        self.limit = limit
        self.per_tool = min(per_tool, limit)
        self._lock = threading.Lock()
        self._running = 0
        self._by_tool: Counter[str] = Counter()

    @property
    def running(self) -> int:
        """Handler threads running now, including those whose callers gave up waiting."""
        return self._running

    def running_for(self, tool: str) -> int:
        """Handler threads of ``tool`` running now."""
        return self._by_tool[tool]

    async def run(self, tool: str, handler: Callable[[], Any]) -> Any:
        """Run ``handler()`` on a new thread and wait for its result.

        Cancelling the wait (a timeout) does not stop the thread; its slot is
        freed when the handler returns.

        Raises:
            ToolBusyError: A limit is reached; the handler was not started.
            Exception: Whatever the handler raises.
        """
        with self._lock:
            if self._running >= self.limit or self._by_tool[tool] >= self.per_tool:
                raise ToolBusyError(tool, self._running, self._by_tool[tool])
            self._running += 1
            self._by_tool[tool] += 1
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def main() -> None:
            try:
                outcome: tuple[Any, BaseException | None] = (handler(), None)
            except BaseException as exc:  # handed to the waiting coroutine, never lost in this thread
                outcome = (None, exc)
            finally:
                self._release(tool)
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, future, *outcome)

        thread = threading.Thread(target=main, name=f"livekit-fallback-tool-{tool}", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # the system refused a new thread
            self._release(tool)
            raise ToolBusyError(tool, self._running, self._by_tool[tool]) from None
        return await future

    def _release(self, tool: str) -> None:
        with self._lock:
            self._running -= 1
            self._by_tool[tool] -= 1
            if self._by_tool[tool] <= 0:
                del self._by_tool[tool]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller timed out and cancelled its wait
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


_THREADS = ToolThreads()


def tool_threads() -> ToolThreads:
    """The process's one :class:`ToolThreads`, shared by every registry."""
    return _THREADS
