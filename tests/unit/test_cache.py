"""Reuse of resolutions on a fake clock: TTL, stale-while-revalidate, single flight, degraded entries."""

from __future__ import annotations

import asyncio

import pytest

from livekit_fallback.config.cache import CacheEntry, MemoryStore, ResolutionCache
from livekit_fallback.config.graph import DEFAULT_NODE_NAMES
from livekit_fallback.config.keys import Platform
from livekit_fallback.config.model import Source
from livekit_fallback.config.pipeline import Resolution, run_pipeline

from .fakes import VERTICAL, FakeClock, FakeDatabase, FakeLocal, snapshot_values

pytestmark = pytest.mark.unit

KEY = (VERTICAL, "livekit")


class Loader:
    """Reads the fake database through the real pipeline and counts the reads."""

    def __init__(self) -> None:
        self.database = FakeDatabase()
        self.gate: asyncio.Event | None = None

    @property
    def reads(self) -> int:
        return len(self.database.reads)

    async def __call__(self, vertical: str, platform: Platform) -> Resolution:
        if self.gate is not None:
            await self.gate.wait()
        return await run_pipeline(
            vertical=vertical,
            platform=platform,
            node_names=DEFAULT_NODE_NAMES,
            database=self.database,
            local_sources=(FakeLocal(Source.SNAPSHOT, snapshot_values()),),
            breaker=None,
            deadline_seconds=0.2,
        )


def _cache(loader: Loader, clock: FakeClock, **options: object) -> ResolutionCache:
    return ResolutionCache(loader, ttl=5.0, stale_for=60.0, clock=clock, **options)  # type: ignore[arg-type]


async def test_a_healthy_entry_is_reused_within_the_ttl() -> None:
    """Inside the TTL the stored resolution is served without a read."""
    loader, clock = Loader(), FakeClock()
    cache = _cache(loader, clock)
    first, how = await cache.get(KEY)
    clock.advance(4.9)
    again, how_again = await cache.get(KEY)
    assert (how, how_again) == ("miss", "hit") and again is first and loader.reads == 1


async def test_past_the_ttl_the_old_entry_is_served_while_one_refresh_runs() -> None:
    """Stale-while-revalidate: the stale entry comes back at once and one background read replaces it."""
    loader, clock = Loader(), FakeClock()
    cache = _cache(loader, clock)
    first, _ = await cache.get(KEY)
    clock.advance(6.0)
    loader.gate = asyncio.Event()
    served = [await cache.get(KEY) for _ in range(3)]
    assert [how for _, how in served] == ["stale"] * 3 and all(r is first for r, _ in served)
    loader.gate.set()
    await cache.aclose()
    assert loader.reads == 2
    refreshed, how = await cache.get(KEY)
    assert how == "hit" and refreshed is not first


async def test_too_old_an_entry_is_read_again_first() -> None:
    """Past TTL plus stale_for the caller waits for a fresh read."""
    loader, clock = Loader(), FakeClock()
    cache = _cache(loader, clock)
    await cache.get(KEY)
    clock.advance(65.0)
    _, how = await cache.get(KEY)
    assert how == "miss" and loader.reads == 2


async def test_concurrent_callers_share_one_read() -> None:
    """Single flight: many concurrent misses for one key cause one read and get the same resolution."""
    loader = Loader()
    loader.gate = asyncio.Event()
    cache = _cache(loader, FakeClock())
    waiting = [asyncio.ensure_future(cache.get(KEY)) for _ in range(100)]
    await asyncio.sleep(0)
    loader.gate.set()
    results = await asyncio.gather(*waiting)
    assert loader.reads == 1 and len({id(r) for r, _ in results}) == 1


async def test_fresh_skips_the_entry_and_zero_ttl_reads_every_time() -> None:
    """fresh=True always reads; with ttl=0 a healthy entry is never reused."""
    loader, clock = Loader(), FakeClock()
    cache = _cache(loader, clock)
    await cache.get(KEY)
    await cache.get(KEY, fresh=True)
    assert loader.reads == 2
    zero = ResolutionCache(loader, ttl=0, clock=clock)
    await zero.get(KEY)
    await zero.get(KEY)
    assert loader.reads == 4


async def test_a_degraded_entry_is_reused_only_while_told_to() -> None:
    """A degraded resolution is read again next time unless keep_degraded() says the database is known down."""
    loader, clock = Loader(), FakeClock()
    loader.database.mode = "refuse"
    keep = [False]
    cache = _cache(loader, clock, keep_degraded=lambda: keep[0])
    await cache.get(KEY)
    await cache.get(KEY)
    assert loader.reads == 2
    keep[0] = True
    _, how = await cache.get(KEY)
    assert how == "hit" and loader.reads == 2


async def test_another_store_can_hold_the_entries() -> None:
    """The policy reads and writes through the given store."""
    loader, clock = Loader(), FakeClock()
    store = MemoryStore()
    cache = _cache(loader, clock, store=store)
    resolution, _ = await cache.get(KEY)
    entry = store.get(KEY)
    assert isinstance(entry, CacheEntry) and entry.resolution is resolution and entry.stored_at == clock.now


async def test_a_degraded_entry_is_served_at_once_while_another_call_reads_again() -> None:
    """While one call re-reads after a degraded resolution (a probe), others get the degraded copy, not a wait."""
    loader, clock = Loader(), FakeClock()
    loader.database.mode = "refuse"
    cache = _cache(loader, clock)
    degraded, _ = await cache.get(KEY)
    assert degraded.events
    loader.database.mode = "answer"
    loader.gate = asyncio.Event()
    probe = asyncio.ensure_future(cache.get(KEY))
    await asyncio.sleep(0)
    served, how = await asyncio.wait_for(cache.get(KEY), 0.1)
    assert (served, how) == (degraded, "hit")
    loader.gate.set()
    fresh, fresh_how = await probe
    assert fresh_how == "miss" and not fresh.events
