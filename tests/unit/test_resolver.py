"""The resolver over fake sources and a fake clock: wiring, observers, backups, breaker recovery, shared state."""

from __future__ import annotations

import asyncio
import logging

import pytest

from livekit_fallback import Resolver
from livekit_fallback.config.alarms import Alarms
from livekit_fallback.config.model import Reason, Source
from livekit_fallback.config.observers import CacheOutcome, ResolutionObserver
from livekit_fallback.config.pipeline import Resolution
from livekit_fallback.config.sources.snapshot import SnapshotSource
from livekit_fallback.config.state.memory import MemoryStorage
from livekit_fallback.config.state.records import StoredConfig
from livekit_fallback.config.state.sqlite import SqliteStorage

from .conftest import Machine
from .fakes import DB_BACKUP_LLM, DB_LLM, DB_URL, VERTICAL, FakeClock, FakeDatabase

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


def _resolver(database: FakeDatabase, clock: FakeClock, machine: Machine, **options: object) -> Resolver:
    options = {"cool_down": 5.0, "failure_threshold": 3, "deadline": 0.2, **options}
    return Resolver(database=database, snapshots=SnapshotSource(), state=machine(), clock=clock, **options)  # type: ignore[arg-type]


def _banners(caplog: pytest.LogCaptureFixture) -> int:
    return sum(getattr(r, "event", None) == "config_fallback" for r in caplog.records)


async def test_resolver_without_arguments_uses_the_machine_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolver() keeps its state where production does: the SQLite file in the cache dir, memory if told."""
    default = Resolver()
    assert isinstance(default.state.storage, SqliteStorage) and default.state.storage.kind == "sqlite"
    monkeypatch.setenv("LIVEKIT_FALLBACK_SHARED_STATE", "0")
    in_process = Resolver().state.storage
    assert isinstance(in_process, MemoryStorage) and in_process is Resolver().state.storage


async def test_observers_hear_each_read_once_and_each_resolution(machine: Machine) -> None:
    """Extra observers get on_read per fresh read and on_resolution per served config with its cache outcome."""
    recorder, clock = Recorder(), FakeClock()
    assert isinstance(recorder, ResolutionObserver)
    async with _resolver(FakeDatabase(), clock, machine, observers=[recorder]) as resolver:
        await resolver.resolve(VERTICAL)
        await resolver.resolve(VERTICAL)
    assert len(recorder.reads) == 1 and recorder.served == ["miss", "hit"]


async def test_a_failing_observer_never_fails_a_call(machine: Machine, caplog: pytest.LogCaptureFixture) -> None:
    """An observer that raises is logged and the caller still gets its config."""
    async with _resolver(FakeDatabase(), FakeClock(), machine, observers=[Broken()]) as resolver:
        with caplog.at_level(logging.ERROR, logger="livekit_fallback"):
            config = await resolver.resolve(VERTICAL)
    assert config.models.llm.value == DB_LLM
    assert any("observer" in r.getMessage() for r in caplog.records)


async def test_the_config_carries_the_ranked_then_the_snapshot_backups(machine: Machine) -> None:
    """Each model kind's chain is the database's ranked backups, then the snapshot's list, then its choice."""
    async with _resolver(FakeDatabase(), FakeClock(), machine) as resolver:
        config = await resolver.resolve(VERTICAL)
    [(ranked, ranked_origin), (listed, listed_origin), (second, _), (llm, origin)] = config.backups["llm"]
    assert ranked.value == DB_BACKUP_LLM and ranked_origin.source is Source.DATABASE
    assert (listed.value, second.value) == ("google/gemini-2.5-flash", "openai/gpt-4.1-mini")
    assert listed_origin == origin
    assert llm.value == "openai/gpt-5" and config.models.llm.value == DB_LLM
    assert origin.source is Source.SNAPSHOT and origin.taken_at is not None
    assert origin.taken_at.date().isoformat() == "2025-11-21"
    assert (origin.location or "").endswith("reverse_mortgage.toml")
    assert set(config.backups) == {"stt", "llm", "tts"}


async def test_during_an_outage_the_last_known_good_copy_keeps_the_ranked_backups(machine: Machine) -> None:
    """With the database down the chain still starts with its ranked backup, from the last-known-good copy."""
    database = FakeDatabase()
    async with _resolver(database, FakeClock(), machine) as resolver:
        healthy = await resolver.resolve(VERTICAL)
        database.mode = "refuse"
        down = await resolver.resolve(VERTICAL, fresh=True)
    assert down.provenance["models.llm"].source is Source.LAST_KNOWN_GOOD and down.models.llm.value == DB_LLM
    assert [c.value for c, _ in down.backups["llm"]] == [c.value for c, _ in healthy.backups["llm"]]
    (first, origin) = down.backups["llm"][0]
    assert first.value == DB_BACKUP_LLM and origin.source is Source.LAST_KNOWN_GOOD


async def test_breaker_recovery_on_a_fake_clock(machine: Machine, caplog: pytest.LogCaptureFixture) -> None:
    """Refusals open the breaker; inside the cool-down nothing is read; after it the database serves again."""
    caplog.set_level(logging.INFO, logger="livekit_fallback")
    database, clock = FakeDatabase(), FakeClock()
    database.mode = "refuse"
    async with _resolver(database, clock, machine) as resolver:
        for _ in range(3):
            down = await resolver.resolve(VERTICAL)
        assert (await resolver.state.breaker()).state == "open" and down.is_degraded
        status = resolver.status()
        assert status.database_reachable is False and not status.healthy and status.breaker == "open"
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
    assert _banners(caplog) == 13


async def test_the_given_state_holds_the_resolution(machine: Machine) -> None:
    """The resolver keeps its resolution in the given storage, under its database's deployment."""
    storage, clock = machine(), FakeClock()
    async with Resolver(
        database=FakeDatabase(), snapshots=SnapshotSource(), state=storage, clock=clock, ttl=7.0, stale_for=1.0
    ) as resolver:
        await resolver.resolve(VERTICAL, "livekit")
        assert resolver.ttl == 7.0 and resolver.stale_for == 1.0 and resolver.deployment == DB_URL
    [rows] = await storage.rows(10)
    [(vertical, platform, entry)] = rows.configs
    assert (rows.deployment, vertical, platform, entry.read_at, entry.degraded) == (
        DB_URL,
        VERTICAL,
        "livekit",
        clock.now,
        False,
    )


async def test_a_second_process_serves_the_first_ones_read(machine: Machine) -> None:
    """Another resolver of the same deployment on the machine gets the stored config without reading the database."""
    first_db, second_db = FakeDatabase(), FakeDatabase()
    async with _resolver(first_db, FakeClock(), machine) as first:
        assert (await first.resolve(VERTICAL)).models.llm.value == DB_LLM
    async with _resolver(second_db, FakeClock(), machine) as second:
        assert (await second.resolve(VERTICAL)).models.llm.value == DB_LLM
    assert len(first_db.reads) == 1 and second_db.reads == []


async def test_an_outage_is_bannered_once_across_processes(machine: Machine, caplog: pytest.LogCaptureFixture) -> None:
    """Two resolvers during one hanging outage: 13 banners in all, and the second never asks the database."""
    caplog.set_level(logging.INFO, logger="livekit_fallback")
    first_db, second_db = FakeDatabase(), FakeDatabase()
    first_db.mode = second_db.mode = "hang"
    async with _resolver(first_db, FakeClock(), machine) as first:
        await first.resolve(VERTICAL)
    async with _resolver(second_db, FakeClock(), machine) as second:
        config = await second.resolve(VERTICAL)
    assert config.is_degraded and second_db.reads == []
    assert _banners(caplog) == 13


async def test_concurrent_pickups_with_nothing_stored_share_one_read(machine: Machine) -> None:
    """Single flight: twenty concurrent first pickups cause one database read and all get its config."""
    database = FakeDatabase()
    database.mode = "hang"
    async with _resolver(database, FakeClock(), machine, deadline=2.0) as resolver:
        calls = [asyncio.ensure_future(resolver.resolve(VERTICAL)) for _ in range(20)]
        await asyncio.sleep(0.05)
        database.release.set()
        configs = await asyncio.gather(*calls)
    assert len(database.reads) == 1 and {c.models.llm.value for c in configs} == {DB_LLM}


async def test_an_unreadable_stored_copy_is_resolved_afresh(machine: Machine, caplog: pytest.LogCaptureFixture) -> None:
    """A copy another version wrote (or a damaged one) is never served: the call reads the database, and says so."""
    caplog.set_level(logging.INFO, logger="livekit_fallback")
    storage, clock, database = machine(), FakeClock(), FakeDatabase()
    await storage.run(DB_URL, lambda tx: tx.put_config(VERTICAL, "livekit", StoredConfig("{garbage", clock.now, False)))
    async with Resolver(database=database, snapshots=SnapshotSource(), state=storage, clock=clock) as resolver:
        config = await resolver.resolve(VERTICAL)
    assert config.models.llm.value == DB_LLM and len(database.reads) == 1
    assert [getattr(r, "event", None) for r in caplog.records].count("store_copy_unreadable") == 1


async def test_snapshot_mode_warns_once_and_counts_no_fallbacks(caplog: pytest.LogCaptureFixture) -> None:
    """Without a database the resolver serves the snapshot, says so once, and reports no banners."""
    caplog.set_level(logging.INFO, logger="tests.snapshot_mode")
    alarms = Alarms(logging.getLogger("tests.snapshot_mode"))
    async with Resolver(snapshots=SnapshotSource(), alarms=alarms, ttl=0, state=MemoryStorage()) as resolver:
        for _ in range(3):
            config = await resolver.resolve(VERTICAL, "signalwire")
        assert resolver.status().database_configured is False
    assert {p.reason for p in config.provenance.values()} == {Reason.NOT_CONFIGURED}
    events = [getattr(r, "event", None) for r in caplog.records]
    assert events == ["snapshot_mode"]


async def test_an_unknown_platform_is_refused(machine: Machine) -> None:
    """A platform other than livekit or signalwire is a ValueError before any read."""
    database = FakeDatabase()
    async with _resolver(database, FakeClock(), machine) as resolver:
        with pytest.raises(ValueError, match="platform"):
            await resolver.resolve(VERTICAL, "zoom")  # type: ignore[arg-type]
    assert database.reads == []
