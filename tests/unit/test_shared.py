"""Resolution through the machine-wide store, in one process with fake sources: encode, decode, share."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from livekit_fallback import Resolver, SnapshotSource
from livekit_fallback.config.breaker import CircuitBreaker
from livekit_fallback.config.model import Source
from livekit_fallback.config.shared import decode_resolution, encode_resolution
from livekit_fallback.config.sources.shared_last_known_good import SharedLastKnownGood
from livekit_fallback.config.store import MachineStore

from .fakes import DB_LLM, VERTICAL, FakeDatabase

pytestmark = pytest.mark.unit


def _resolver(database: FakeDatabase, store: MachineStore, **options: object) -> Resolver:
    return Resolver(
        database=database,
        snapshots=SnapshotSource(),
        shared=store,
        breaker=CircuitBreaker(cool_down=60.0),
        deadline=0.5,
        **options,  # type: ignore[arg-type]
    )


async def test_a_stored_resolution_decodes_to_the_same_config_and_events() -> None:
    """A degraded resolution survives the store's JSON: same config, same fallback events, same verdict."""
    database = FakeDatabase()
    database.mode = "refuse"
    async with Resolver(database=database, snapshots=SnapshotSource()) as resolver:
        resolution = await resolver._read(VERTICAL, "livekit")
    decoded = decode_resolution(encode_resolution(resolution))
    assert decoded.config == resolution.config
    assert [(e.component, e.failure.reason, e.used_source) for e in decoded.events] == [
        (e.component, e.failure.reason, e.used_source) for e in resolution.events
    ]
    assert (decoded.database_ok, decoded.healthy) == (resolution.database_ok, resolution.healthy)


async def test_a_second_process_serves_the_first_ones_read(tmp_path: Path) -> None:
    """Another resolver on the same cache directory gets the stored config without reading the database."""
    first_db, second_db = FakeDatabase(), FakeDatabase()
    async with _resolver(first_db, MachineStore(tmp_path)) as first:
        assert (await first.resolve(VERTICAL)).models.llm.value == DB_LLM
    async with _resolver(second_db, MachineStore(tmp_path)) as second:
        assert (await second.resolve(VERTICAL)).models.llm.value == DB_LLM
    assert len(first_db.reads) == 1 and second_db.reads == []


async def test_an_outage_is_bannered_once_across_processes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Two resolvers during one outage: 13 banners in all, and the second never asks the database."""
    caplog.set_level(logging.INFO, logger="livekit_fallback")
    first_db, second_db = FakeDatabase(), FakeDatabase()
    first_db.mode = second_db.mode = "hang"
    async with _resolver(first_db, MachineStore(tmp_path)) as first:
        await first.resolve(VERTICAL)
    async with _resolver(second_db, MachineStore(tmp_path)) as second:
        config = await second.resolve(VERTICAL)
    assert config.is_degraded and second_db.reads == []
    assert sum("DATABASE FAILURE:" in r.getMessage() for r in caplog.records) == 13


async def test_an_unusable_store_falls_back_to_this_process(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """With a corrupt state file, resolution still reads the database, and the store's problem is logged once."""
    (tmp_path / "state.sqlite3").write_bytes(b"not a database" * 64)
    database = FakeDatabase()
    async with _resolver(database, MachineStore(tmp_path)) as resolver:
        configs = [await resolver.resolve(VERTICAL) for _ in range(3)]
    assert all(c.models.llm.value == DB_LLM for c in configs) and len(database.reads) == 1
    assert [r.event for r in caplog.records if getattr(r, "event", "").startswith("store_")] == ["store_unavailable"]


async def test_one_bad_component_in_the_machines_copy_gets_its_own_alarm(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A damaged node in the last-known-good copy is reported by name and falls back alone to the snapshot."""
    store = MachineStore(tmp_path)
    async with _resolver(FakeDatabase(), store, last_known_good=SharedLastKnownGood(store)) as resolver:
        await resolver.resolve(VERTICAL)
        await resolver.aclose()  # the copy is written in the background
    await store.store_last_known_good(
        VERTICAL, "livekit", {"nodes.verify": ('{"role": 7}', "2099-01-01T00:00:00+00:00")}
    )
    down = FakeDatabase()
    down.mode = "refuse"
    async with _resolver(down, MachineStore(tmp_path), last_known_good=SharedLastKnownGood(store)) as resolver:
        config = await resolver.resolve(VERTICAL, fresh=True)
    assert config.provenance["nodes.verify"].source is Source.SNAPSHOT
    assert config.provenance["nodes.greet"].source is Source.LAST_KNOWN_GOOD
    skipped = [r for r in caplog.records if getattr(r, "event", None) == "cache_problem"]
    assert len(skipped) == 1 and "nodes.verify" in skipped[0].getMessage()
