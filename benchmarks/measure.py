"""Measurement primitives: an event-loop stall ticker, timed runs with request counts, statistics."""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import math
import statistics
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from .infra import Infra

Cleanup = Callable[[], Awaitable[object]] | None
Once = Callable[[], Awaitable[Cleanup]]
"""One resolution: awaited inside the timed window; returns an untimed cleanup (or None)."""


class GcWatch:
    """Records the longest garbage-collector pause while installed in ``gc.callbacks``."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.longest = max(self.longest, time.perf_counter() - self._started)

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


class Ticker:
    """Measures the worst event-loop stall while it runs.

    A task sleeps ``interval`` in a loop and records how late each wake-up is.
    A loop blocked by synchronous work cannot wake it, so its lateness is the
    length of the block. The wake-up pending when the ticker stops counts too,
    so a block that lasts to the very end is not missed. The floor is the
    loop's timer granularity (about 1 ms with epoll).
    """

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.worst = 0.0
        self._due = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self.worst = max(self.worst, loop.time() - self._due)

    async def __aenter__(self) -> Ticker:
        self._task = asyncio.ensure_future(self._run())
        await asyncio.sleep(0)  # let the ticker start sleeping before the measured work begins
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self.worst = max(self.worst, asyncio.get_running_loop().time() - self._due)
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task


@dataclass
class Runs:
    """Measured resolutions of one reader in one scenario.

    Attributes:
        walls: Wall time of each resolution (s).
        requests: Database requests (or connections, see ``counted``) per resolution.
        stalls: Worst event-loop stall during each resolution (s).
        gc_pauses: Longest garbage-collector pause during each resolution (s).
        handshakes: TLS handshakes the database's front completed during each resolution.
        counted: What ``requests`` counts: ``requests`` (received by the stand-in)
            or ``connections`` (accepted by the proxy; used when it swallows requests).
    """

    walls: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    stalls: list[float] = field(default_factory=list)
    gc_pauses: list[float] = field(default_factory=list)
    handshakes: list[int] = field(default_factory=list)
    counted: str = "requests"

    @property
    def n(self) -> int:
        return len(self.walls)

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def p99(self) -> float:
        return percentile(self.walls, 99)

    @property
    def requests_per_resolution(self) -> float:
        return statistics.mean(self.requests)

    @property
    def handshakes_per_resolution(self) -> float:
        return statistics.mean(self.handshakes)

    @property
    def worst_stall(self) -> float:
        return max(self.stalls)

    @property
    def median_stall(self) -> float:
        return statistics.median(self.stalls)

    @property
    def gc_pause_of_worst_stall(self) -> float:
        """The longest GC pause in the run that had the worst stall."""
        return self.gc_pauses[self.stalls.index(self.worst_stall)]


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (with fewer than 100 values, p99 is the maximum)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


async def measure(infra: Infra, once: Once, runs: int, *, counted: str = "requests", warmup: int = 1) -> Runs:
    """Times ``runs`` resolutions, each under a fresh :class:`Ticker`, counting database traffic.

    Args:
        infra: The database side (for its request and connection counters).
        once: One resolution (see :data:`Once`).
        runs: Measured resolutions.
        counted: ``requests`` or ``connections`` (see :class:`Runs`).
        warmup: Unmeasured resolutions first (imports, first connections).
    """
    for _ in range(warmup):
        cleanup = await once()
        if cleanup is not None:
            await cleanup()
    result = Runs(counted=counted)
    for _ in range(runs):
        before = infra.counters()
        with GcWatch() as collector:
            async with Ticker() as ticker:
                started = time.perf_counter()
                cleanup = await once()
                wall = time.perf_counter() - started
        after = infra.counters()
        if cleanup is not None:
            await cleanup()
        result.walls.append(wall)
        result.stalls.append(ticker.worst)
        result.requests.append(getattr(after, counted) - getattr(before, counted))
        result.handshakes.append(after.handshakes - before.handshakes)
        result.gc_pauses.append(collector.longest)
    return result


class UnclosedSockets:
    """Counts the sockets the garbage collector had to close (``ResourceWarning: unclosed``) in a block.

    A TLS handshake cancelled by the resolver's deadline leaves its socket to
    the collector (httpx over anyio on Python 3.11). The block ends with a full
    collection, so every socket it left behind is counted here and not later.
    """

    def __init__(self) -> None:
        self.count = 0
        self._catcher = warnings.catch_warnings(record=True)
        self._caught: list[warnings.WarningMessage] = []

    def __enter__(self) -> UnclosedSockets:
        self._caught = self._catcher.__enter__() or []
        warnings.simplefilter("always", ResourceWarning)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            gc.collect()
        finally:
            self._catcher.__exit__(None, None, None)
        self.count = sum(
            1 for w in self._caught if issubclass(w.category, ResourceWarning) and "unclosed <socket" in str(w.message)
        )
        for w in self._caught:  # anything else is not ours to swallow
            if not issubclass(w.category, ResourceWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


class _FormatAndDiscard(logging.Handler):
    """Formats every record (banners, stack traces) as a real handler would, then drops it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        self._sink = io.StringIO()

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)


@contextmanager
def quiet_package_logs() -> Iterator[None]:
    """Routes the package's alarms to a formatting, discarding handler, and restores the logger after.

    The outage scenarios log a banner per component with its trace; formatting
    them is part of the cost a real deployment pays, printing them is not.
    """
    log = logging.getLogger("livekit_fallback")
    saved = (log.handlers[:], log.propagate, log.level)
    log.handlers[:] = [_FormatAndDiscard()]
    log.propagate = False
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.handlers[:], log.propagate = saved[0], saved[1]
        log.setLevel(saved[2])
