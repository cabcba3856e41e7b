"""An event loop on a daemon thread, for running the package's async code from synchronous callers.

The SignalWire Agents SDK calls its per-request hook and tool handlers
synchronously, from worker threads; the resolver and the tools are async and
keep connection pools bound to the loop they first ran on. One
:class:`LoopThread` per agent gives them one loop for their whole life.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    """A running event loop on its own daemon thread.

    Args:
        name: The thread's name (shown in thread dumps and logs).
    """

    def __init__(self, name: str = "livekit-fallback-loop") -> None:
        self._loop = asyncio.new_event_loop()
        started = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.call_soon(started.set)
            self._loop.run_forever()

        self._thread = threading.Thread(target=main, name=name, daemon=True)
        self._thread.start()
        started.wait()

    @property
    def running(self) -> bool:
        """True until :meth:`stop`."""
        return self._thread.is_alive() and not self._loop.is_closed()

    def run(self, coro: Coroutine[Any, Any, T], *, timeout: float) -> T:
        """Run a coroutine on the loop and wait for its result.

        Raises:
            TimeoutError: It did not finish within ``timeout`` seconds (it is cancelled).
            RuntimeError: Called from the loop's own thread (it would wait for itself).
        """
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("LoopThread.run was called from its own loop")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:  # not the built-in TimeoutError before Python 3.11
            future.cancel()
            raise TimeoutError(f"no result within {timeout:.1f} s") from None

    def stop(self) -> None:
        """Stop the loop and its thread (idempotent)."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self._loop.close()
