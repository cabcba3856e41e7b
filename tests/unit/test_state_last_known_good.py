"""The last-known-good copy of a deployment, per storage: merged per component, ranked backups kept."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from livekit_fallback import Resolver, SnapshotSource
from livekit_fallback.config.graph import DEFAULT_NODE_NAMES
from livekit_fallback.config.keys import component_keys
from livekit_fallback.config.model import AgentConfig, Reason, Source
from livekit_fallback.config.sources.base import Failure, FetchRequest, Found
from livekit_fallback.config.sources.last_known_good import BACKUPS_KEY, LastKnownGoodSource
from livekit_fallback.config.state.state import ResolutionState

from .conftest import DEPLOYMENT, POLICY, Machine
from .fakes import DB_BACKUP_LLM, DB_LLM, DB_URL, VERTICAL, FakeClock, FakeDatabase

pytestmark = pytest.mark.unit

KEYS = tuple(str(k) for k in component_keys(DEFAULT_NODE_NAMES))


def _request(newer_than: datetime | None = None) -> FetchRequest:
    return FetchRequest(VERTICAL, "livekit", KEYS, tuple(DEFAULT_NODE_NAMES), 0.0, newer_than)


async def _database_config(machine: Machine) -> AgentConfig:
    """A config resolved from the fake database (which also lists a ranked backup LLM)."""
    async with Resolver(database=FakeDatabase(), snapshots=SnapshotSource(), state=machine()) as resolver:
        return await resolver.resolve(VERTICAL)


async def test_components_merge_into_one_copy_across_processes(
    processes: tuple[ResolutionState, ResolutionState],
) -> None:
    """Each process adds its components; a later read of a component replaces only that component."""
    a, b = processes
    await a.store_last_known_good(VERTICAL, "livekit", {"theme": ('"t1"', "2026-01-01T00:00:00+00:00")})
    await b.store_last_known_good(VERTICAL, "livekit", {"models.llm": ('"m"', "2026-01-02T00:00:00+00:00")})
    await b.store_last_known_good(VERTICAL, "livekit", {"theme": ('"t2"', "2026-01-03T00:00:00+00:00")})
    assert await a.last_known_good(VERTICAL, "livekit") == {
        "theme": ('"t2"', "2026-01-03T00:00:00+00:00"),
        "models.llm": ('"m"', "2026-01-02T00:00:00+00:00"),
    }
    assert await a.last_known_good(VERTICAL, "signalwire") == {}


async def test_a_database_read_keeps_every_component_and_the_ranked_backups(machine: Machine) -> None:
    """The copy holds each database component and the database's ranked backups, but not the snapshot's."""
    config = await _database_config(machine)
    state = ResolutionState(machine(), DEPLOYMENT, POLICY)
    copy = await state.last_known_good(VERTICAL, "livekit")
    assert set(copy) == {*KEYS, BACKUPS_KEY}
    ranked = json.loads(copy[BACKUPS_KEY][0])
    assert [choice["value"] for choice in ranked["llm"]] == [DB_BACKUP_LLM]
    assert ranked["stt"] == ranked["tts"] == []
    assert config.backups["llm"][0][0].value == DB_BACKUP_LLM


async def test_the_copy_serves_each_component_and_its_backups(machine: Machine) -> None:
    """Served back, every component is found with its read time; the backups carry the copy's provenance."""
    await _database_config(machine)
    source = LastKnownGoodSource(ResolutionState(machine(), DB_URL, POLICY))
    outcomes = await source.fetch(_request())
    assert all(isinstance(o, Found) for o in outcomes.values())
    llm = outcomes["models.llm"]
    assert isinstance(llm, Found) and llm.value.value == DB_LLM
    [(choice, origin)] = (await source.backups(VERTICAL, "livekit"))["llm"]
    assert choice.value == DB_BACKUP_LLM and origin.source is Source.LAST_KNOWN_GOOD and origin.taken_at is not None


async def test_damaged_backups_are_left_out(machine: Machine, clock: FakeClock) -> None:
    """A damaged backups entry gives no backups (the snapshot's still follow), not an error."""
    state = ResolutionState(machine(), DEPLOYMENT, POLICY, clock=clock)
    await state.store_last_known_good(VERTICAL, "livekit", {BACKUPS_KEY: ("{not json", "2026-01-01T00:00:00")})
    assert await LastKnownGoodSource(state).backups(VERTICAL, "livekit") == {}


async def test_nothing_from_the_database_stores_nothing(machine: Machine) -> None:
    """A config served wholly from fallbacks is not a last-known-good copy."""
    async with Resolver(snapshots=SnapshotSource(), state=machine()) as resolver:
        snapshot_only = await resolver.resolve(VERTICAL)
    state = ResolutionState(machine(), DEPLOYMENT, POLICY)
    assert not await LastKnownGoodSource(state).store(snapshot_only)
    assert await state.last_known_good(VERTICAL, "livekit") == {}


async def test_one_bad_component_is_reported_and_falls_back_alone(machine: Machine) -> None:
    """A damaged node in the copy is a failure of that node only, reported with its name."""
    state = ResolutionState(machine(), DEPLOYMENT, POLICY)
    problems: list[tuple[str, str]] = []
    source = LastKnownGoodSource(state, on_problem=lambda where, detail: problems.append((where, detail)))
    await state.store_last_known_good(
        VERTICAL,
        "livekit",
        {
            "nodes.verify": ('{"role": 7}', "2026-01-01T00:00:00+00:00"),
            "nodes.greet": ("not json", "2026-01-01T00:00:00+00:00"),
        },
    )
    outcomes = await source.fetch(_request())
    verify, greet, theme = outcomes["nodes.verify"], outcomes["nodes.greet"], outcomes["theme"]
    assert isinstance(verify, Failure) and verify.reason is Reason.INVALID_CONTENT
    assert isinstance(greet, Failure) and greet.reason is Reason.INVALID_CONTENT
    assert isinstance(theme, Failure) and theme.reason is Reason.MISSING_ROW
    assert len(problems) == 2
    assert "nodes.verify" in problems[0][1] + problems[1][1] and "nodes.greet" in problems[0][1] + problems[1][1]


async def test_a_copy_older_than_the_snapshot_is_not_used(machine: Machine) -> None:
    """A component read before the snapshot was taken is skipped: the snapshot is the newer known-good copy."""
    await _database_config(machine)
    source = LastKnownGoodSource(ResolutionState(machine(), DB_URL, POLICY))
    outcomes = await source.fetch(_request(newer_than=datetime(2999, 1, 1, tzinfo=timezone.utc)))
    assert {o.reason for o in outcomes.values() if isinstance(o, Failure)} == {Reason.MISSING_ROW}
    assert not any(isinstance(o, Found) for o in outcomes.values())
