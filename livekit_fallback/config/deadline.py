"""Waiting until a deadline, fairly to the database when this process was the slow one.

A deadline timer fires late when this process's event loop was blocked (a
busy or paused call process, or one starved of CPU). An answer may then have
arrived and not been read: that says nothing about the database. So a wait
whose deadline the loop reached late gives what is still pending a short grace
(at most :data:`LATE_GRACE`, and never longer than the loop was late) to be
read; only what is still unanswered after it has timed out. With the loop on
time the deadline is exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

__all__ = ["LATE_AFTER", "LATE_GRACE", "wait_until"]

LATE_AFTER = 0.05
"""Seconds a deadline may be reached late before the loop counts as having been blocked at it."""
LATE_GRACE = 0.25
"""Seconds at most that pending work gets, after a deadline the loop reached late, for answers already arrived."""


async def wait_until(
    tasks: Iterable[asyncio.Future[Any]], timeout: float
) -> tuple[set[asyncio.Future[Any]], set[asyncio.Future[Any]]]:
    """``asyncio.wait`` with a timeout, plus the grace when the loop reached the deadline late.

    Returns:
        ``(done, pending)``; the caller cancels what is pending.
    """
    loop = asyncio.get_running_loop()
    due = loop.time() + max(0.0, timeout)
    done, pending = await asyncio.wait(set(tasks), timeout=max(0.0, timeout))
    late = loop.time() - due
    if pending and late > LATE_AFTER:
        more, pending = await asyncio.wait(pending, timeout=min(late, LATE_GRACE))
        done |= more
    return done, pending
