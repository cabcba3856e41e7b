"""Blocking file I/O off the event loop, on daemon threads that cannot keep a process alive.

A call stuck in the kernel (a FIFO, a hung network file system at the state
file's path) cannot be interrupted; on a daemon thread it at least cannot
keep the process from exiting on SIGTERM, and the caller stops waiting for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["Worker", "run_in_daemon_thread"]

_T = TypeVar("_T")


def _stop() -> None:
    """Marks the end of a worker's queue."""


class Worker:
    """One daemon thread running jobs in order (for example, the owner of one SQLite connection).

    Args:
        name: The thread's name.
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], concurrent.futures.Future[object]]] = (
            queue.SimpleQueue()
        )
        self.busy_since: float | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def stuck(self, limit: float) -> bool:
        """Whether the current job has run longer than ``limit`` seconds."""
        busy_since = self.busy_since
        return busy_since is not None and time.monotonic() - busy_since > limit

    def close(self) -> None:
        """Let the thread end once its queued jobs are done."""
        self._jobs.put((_stop, concurrent.futures.Future()))

    def submit(self, job: Callable[[], _T]) -> concurrent.futures.Future[_T]:
        """Queue a job; its future carries the result or the exception."""
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        self._jobs.put((job, future))  # type: ignore[arg-type]
        return future

    def _loop(self) -> None:
        while True:
            job, future = self._jobs.get()
            if job is _stop:
                return
            if not future.set_running_or_notify_cancel():
                continue
            self.busy_since = time.monotonic()
            try:
                future.set_result(job())
            except BaseException as exc:  # handed to the awaiting caller
                future.set_exception(exc)
            finally:
                self.busy_since = None


async def run_in_daemon_thread(job: Callable[[], _T], timeout: float) -> _T:
    """Run blocking I/O on a throwaway daemon thread, giving up after ``timeout`` seconds.

    Raises:
        TimeoutError: The job did not finish in time.
    """
    worker = Worker("livekit-fallback-io")
    future = worker.submit(job)
    worker.close()
    return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
