"""Reuse of resolved configs: TTL, single flight, stale-while-revalidate.

A resolved config is reused for ``ttl`` seconds. Concurrent resolutions of
the same vertical and platform share one read. A healthy entry past its TTL is
returned at once while one background refresh runs (stale-while-revalidate),
up to ``stale_for`` seconds past the TTL. A degraded entry is never sticky: it
is reused only while ``keep_degraded()`` says so (the resolver passes "the
breaker is cooling down"), so a recovered database is used by the very next
resolution.

The policy lives here; where entries are kept is a :class:`CacheStore`. The
in-process :class:`MemoryStore` is the default; a store shared by every process
of a machine can take its place (its ``clock`` then has to be one all
processes share, such as wall time).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from ..log import logger as _log
from .keys import Platform
from .pipeline import Resolution

__all__ = ["CacheEntry", "CacheKey", "CacheOutcome", "CacheStore", "MemoryStore", "ResolutionCache"]

CacheKey = tuple[str, Platform]
"""Vertical and platform."""

CacheOutcome = Literal["hit", "stale", "miss"]
"""How a resolution was served: reused, reused while a refresh runs, or read now."""


@dataclass(frozen=True)
class CacheEntry:
    """A stored resolution and when it was stored (in the cache's clock)."""

    resolution: Resolution
    stored_at: float


class CacheStore(Protocol):
    """Where resolved configs are kept between resolutions."""

    def get(self, key: CacheKey) -> CacheEntry | None:
        """The latest entry for a vertical and platform, if any."""
        ...

    def put(self, key: CacheKey, entry: CacheEntry) -> None:
        """Replace the entry for a vertical and platform."""
        ...


class MemoryStore:
    """A :class:`CacheStore` in this process's memory."""

    def __init__(self) -> None:
        self._entries: dict[CacheKey, CacheEntry] = {}

    def get(self, key: CacheKey) -> CacheEntry | None:
        """The latest entry for a vertical and platform, if any."""
        return self._entries.get(key)

    def put(self, key: CacheKey, entry: CacheEntry) -> None:
        """Replace the entry for a vertical and platform."""
        self._entries[key] = entry


Loader = Callable[[str, Platform], Awaitable[Resolution]]


class ResolutionCache:
    """Serves resolutions from a store, reading through ``load`` when it must.

    Args:
        load: Reads the sources for a vertical and platform (one fresh resolution).
        ttl: Seconds a resolution is reused (0 disables reuse of healthy entries).
        stale_for: Seconds past the TTL a healthy entry is still served at once
            while one background refresh runs.
        store: Where entries are kept (in this process by default).
        keep_degraded: Whether a degraded entry may be served again now.
        clock: The clock entries are stamped with (monotonic by default).
    """

    def __init__(
        self,
        load: Loader,
        *,
        ttl: float = 5.0,
        stale_for: float = 60.0,
        store: CacheStore | None = None,
        keep_degraded: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self.ttl = ttl
        self.stale_for = stale_for
        self.store: CacheStore = store if store is not None else MemoryStore()
        self._keep_degraded = keep_degraded
        self._clock = clock
        self._inflight: dict[CacheKey, asyncio.Task[Resolution]] = {}
        self._background: set[asyncio.Task[None]] = set()

    async def get(self, key: CacheKey, *, fresh: bool = False) -> tuple[Resolution, CacheOutcome]:
        """The resolution to serve now, and how it was served.

        Args:
            key: Vertical and platform.
            fresh: Ignore the stored entry and read now (still shared with a read in flight).
        """
        entry = None if fresh else self.store.get(key)
        if entry is not None:
            outcome = self._classify(entry)
            if outcome == "stale":
                self._refresh_in_background(key)
            if outcome != "miss":
                return entry.resolution, outcome
            if entry.resolution.events and self._reading(key):
                # A degraded copy while another call reads again (the breaker's probe): nobody waits on it.
                return entry.resolution, "hit"
        return await self._shared_flight(key), "miss"

    def _classify(self, entry: CacheEntry) -> CacheOutcome:
        if entry.resolution.events:
            return "hit" if self._keep_degraded() else "miss"
        age = self._clock() - entry.stored_at
        if age < self.ttl:
            return "hit"
        if self.ttl > 0 and age < self.ttl + self.stale_for:
            return "stale"
        return "miss"

    def track(self, coro: Awaitable[None]) -> None:
        """Run ``coro`` in the background; :meth:`aclose` waits for it."""

        async def run() -> None:
            await coro

        task = asyncio.ensure_future(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def aclose(self) -> None:
        """Let background work finish (up to 5 s), then cancel what is left."""
        if self._background:
            await asyncio.wait(self._background, timeout=5.0)
        pending = (*self._background, *self._inflight.values())
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _shared_flight(self, key: CacheKey) -> Resolution:
        task = self._inflight.get(key)
        if task is None or task.done():  # a finished read is forgotten by a callback that may not have run yet
            task = asyncio.ensure_future(self._read(key))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(task)

    def _reading(self, key: CacheKey) -> bool:
        task = self._inflight.get(key)
        return task is not None and not task.done()

    def _forget(self, key: CacheKey, done: asyncio.Task[Resolution]) -> None:
        if self._inflight.get(key) is done:
            del self._inflight[key]

    async def _read(self, key: CacheKey) -> Resolution:
        resolution = await self._load(*key)
        self.store.put(key, CacheEntry(resolution, self._clock()))
        return resolution

    def _refresh_in_background(self, key: CacheKey) -> None:
        if key in self._inflight:
            return

        async def refresh() -> None:
            try:
                await self._shared_flight(key)
            except Exception:
                _log.exception("background refresh of %s/%s failed", *key)

        self.track(refresh())
