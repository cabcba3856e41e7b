"""The resolver over fake sources and a fake clock: wiring, observers, backups, breaker recovery, status."""

from __future__ import annotations

import logging

import pytest

from livekit_fallback import Resolver
from livekit_fallback.config.alarms import Alarms
from livekit_fallback.config.breaker import CircuitBreaker
from livekit_fallback.config.cache import CacheOutcome, MemoryStore
from livekit_fallback.config.model import Reason, Source
from livekit_fallback.config.observers import ResolutionObserver
from livekit_fallback.config.pipeline import Resolution
from livekit_fallback.config.sources.snapshot import SnapshotSource

from .fakes import DB_LLM, VERTICAL, FakeClock, FakeDatabase

pytestmark = pytest.mark.unit


class Recorder:
    """An observer that keeps what it was told."""

    def __init__(self) -> None:
        self.reads: list[Resolution] = []
        self.served: list[CacheOutcome] = []

    def on_read(self, resolution: Resolution) -> None:
        self.reads.append(resolution)

    def on_resolution(self, resolution: Resolution, cache: CacheOutcome, seconds: float) -> None:
        self.served.append(cache)


class Broken:
    """An observer that always raises."""

    def on_read(self, resolution: Resolution) -> None:
        raise RuntimeError("observer bug")

    def on_resolution(self, resolution: Resolution, cache: CacheOutcome, seconds: float) -> None:
        raise RuntimeError("observer bug")


def _resolver(database: FakeDatabase, clock: FakeClock, **options: object) -> Resolver:
    breaker = CircuitBreaker(failure_threshold=3, cool_down=5.0, clock=clock)
    return Resolver(
        database=database, snapshots=SnapshotSource(), breaker=breaker, clock=clock, deadline=0.2, **options
    )  # type: ignore[arg-type]


async def test_observers_hear_each_read_once_and_each_resolution() -> None:
    """Extra observers get on_read per fresh read and on_resolution per served config with its cache outcome."""
    recorder, clock = Recorder(), FakeClock()
    assert isinstance(recorder, ResolutionObserver)
    async with _resolver(FakeDatabase(), clock, observers=[recorder]) as resolver:
        await resolver.resolve(VERTICAL)
        await resolver.resolve(VERTICAL)
    assert len(recorder.reads) == 1 and recorder.served == ["miss", "hit"]


async def test_a_failing_observer_never_fails_a_call(caplog: pytest.LogCaptureFixture) -> None:
    """An observer that raises is logged and the caller still gets its config."""
    async with _resolver(FakeDatabase(), FakeClock(), observers=[Broken()]) as resolver:
        with caplog.at_level(logging.ERROR, logger="livekit_fallback"):
            config = await resolver.resolve(VERTICAL)
    assert config.models.llm.value == DB_LLM
    assert any("observer" in r.getMessage() for r in caplog.records)


async def test_the_config_carries_the_snapshot_models_as_backups() -> None:
    """Each model kind's backups are the snapshot's backup list then its choice, with the snapshot's date and file."""
    async with _resolver(FakeDatabase(), FakeClock()) as resolver:
        config = await resolver.resolve(VERTICAL)
    [(listed, listed_origin), (second, _), (llm, origin)] = config.backups["llm"]
    assert (listed.value, second.value) == ("google/gemini-2.5-flash", "openai/gpt-4.1-mini")
    assert listed_origin == origin
    assert llm.value == "openai/gpt-5" and config.models.llm.value == DB_LLM
    assert origin.source is Source.SNAPSHOT and origin.taken_at is not None
    assert origin.taken_at.date().isoformat() == "2025-11-21"
    assert (origin.location or "").endswith("reverse_mortgage.toml")
    assert set(config.backups) == {"stt", "llm", "tts"}


async def test_breaker_recovery_on_a_fake_clock(caplog: pytest.LogCaptureFixture) -> None:
    """Refusals open the breaker; inside the cool-down nothing is read; after it the database serves again."""
    caplog.set_level(logging.INFO, logger="livekit_fallback")
    database, clock = FakeDatabase(), FakeClock()
    database.mode = "refuse"
    async with _resolver(database, clock) as resolver:
        for _ in range(3):
            down = await resolver.resolve(VERTICAL)
        assert resolver.breaker is not None and resolver.breaker.state.value == "open" and down.is_degraded
        status = resolver.status()
        assert status.database_reachable is False and not status.healthy
        database.mode = "answer"
        held = await resolver.resolve(VERTICAL)
        assert len(database.reads) == 3 and held.provenance["theme"].reason is Reason.UNREACHABLE
        skipped = await resolver.resolve(VERTICAL, fresh=True)
        assert len(database.reads) == 3 and skipped.provenance["theme"].reason is Reason.CIRCUIT_OPEN
        clock.advance(5.0)
        up = await resolver.resolve(VERTICAL)
        assert len(database.reads) == 4 and not up.is_degraded
        assert resolver.status().healthy and resolver.status().to_json()["status"] == "ok"
    recovered = [r for r in caplog.records if getattr(r, "event", None) == "config_recovered"]
    assert len(recovered) == 1 and recovered[0].degraded_resolutions == 5


async def test_a_passed_cache_store_holds_the_entries() -> None:
    """The resolver reads and writes resolutions through the given store."""
    store, clock = MemoryStore(), FakeClock()
    async with _resolver(FakeDatabase(), clock, cache=store, ttl=7.0, stale_for=1.0) as resolver:
        config = await resolver.resolve(VERTICAL, "livekit")
        assert resolver.ttl == 7.0 and resolver.stale_for == 1.0
    entry = store.get((VERTICAL, "livekit"))
    assert entry is not None and entry.resolution.config is config


async def test_snapshot_mode_warns_once_and_counts_no_fallbacks(caplog: pytest.LogCaptureFixture) -> None:
    """Without a database the resolver serves the snapshot, says so once, and reports no banners."""
    caplog.set_level(logging.INFO, logger="tests.snapshot_mode")
    alarms = Alarms(logging.getLogger("tests.snapshot_mode"))
    async with Resolver(snapshots=SnapshotSource(), alarms=alarms, ttl=0) as resolver:
        for _ in range(3):
            config = await resolver.resolve(VERTICAL, "signalwire")
        assert resolver.breaker is None and resolver.status().database_configured is False
    assert {p.reason for p in config.provenance.values()} == {Reason.NOT_CONFIGURED}
    events = [getattr(r, "event", None) for r in caplog.records]
    assert events == ["snapshot_mode"]


async def test_an_unknown_platform_is_refused() -> None:
    """A platform other than livekit or signalwire is a ValueError before any read."""
    database = FakeDatabase()
    async with _resolver(database, FakeClock()) as resolver:
        with pytest.raises(ValueError, match="platform"):
            await resolver.resolve(VERTICAL, "zoom")  # type: ignore[arg-type]
    assert database.reads == []
