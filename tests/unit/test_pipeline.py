"""One fresh resolution over fake sources: source order, fallback, deadline, skip, verdicts, stalls, locations."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from livekit_fallback.config.graph import DEFAULT_NODE_NAMES
from livekit_fallback.config.model import Reason, Source
from livekit_fallback.config.pipeline import Locations, Skip, run_pipeline
from livekit_fallback.config.state.codec import decode_resolution, encode_resolution
from livekit_fallback.config.state.policy import Verdict
from livekit_fallback.errors import ConfigUnavailableError

from .fakes import (
    DB_LLM,
    VERTICAL,
    FakeDatabase,
    FakeLocal,
    LocatedDatabase,
    answer_while_blocked,
    block_loop,
    snapshot_values,
)

pytestmark = pytest.mark.unit

NODES = DEFAULT_NODE_NAMES


def _snapshot() -> FakeLocal:
    return FakeLocal(Source.SNAPSHOT, snapshot_values())


async def _run(database, *local, skip=None, deadline=0.2, locations=None):  # noqa: ANN001, ANN002, ANN202
    return await run_pipeline(
        vertical=VERTICAL,
        platform="livekit",
        node_names=NODES,
        database=database,
        local_sources=local or (_snapshot(),),
        skip=skip,
        deadline_seconds=deadline,
        locations=locations,
    )


async def test_a_healthy_database_serves_every_component() -> None:
    """With the database answering, every component comes from it and no event is raised."""
    resolution = await _run(FakeDatabase())
    assert {p.source for p in resolution.config.provenance.values()} == {Source.DATABASE}
    assert resolution.config.models.llm.value == DB_LLM
    assert resolution.events == () and resolution.database_ok is True and len(resolution.healthy) == 13


async def test_each_component_falls_back_alone_in_source_order() -> None:
    """A broken node comes from last-known-good, one missing there from the snapshot; the rest from the database."""
    database = FakeDatabase()
    database.broken = {"nodes.verify", "nodes.quote"}
    lkg_values = {k: v for k, v in snapshot_values().items() if k != "nodes.quote"}
    lkg, snapshot = FakeLocal(Source.LAST_KNOWN_GOOD, lkg_values), _snapshot()
    resolution = await _run(database, lkg, snapshot)
    provenance = resolution.config.provenance
    assert provenance["nodes.verify"].source is Source.LAST_KNOWN_GOOD
    assert provenance["nodes.quote"].source is Source.SNAPSHOT
    assert provenance["nodes.quote"].reason is Reason.INVALID_CONTENT
    assert {k for k, p in provenance.items() if p.source is Source.DATABASE} == set(provenance) - {
        "nodes.verify",
        "nodes.quote",
    }
    assert lkg.reads[0].keys == ("nodes.verify", "nodes.quote") and snapshot.reads[0].keys == ("nodes.quote",)
    assert resolution.database_ok is True  # bad data is not a connection failure
    assert sorted(e.component for e in resolution.events) == ["nodes.quote", "nodes.verify"]


async def test_a_hanging_database_costs_one_deadline_and_the_floor_still_answers() -> None:
    """A database that never returns is abandoned at the deadline; every component comes from the snapshot."""
    started = time.perf_counter()
    resolution = await _run(_hanging(), deadline=0.1)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.1 + 0.1
    assert {p.source for p in resolution.config.provenance.values()} == {Source.SNAPSHOT}
    assert {p.reason for p in resolution.config.provenance.values()} == {Reason.TIMEOUT}
    assert resolution.database_ok is False


def _said(resolution: object) -> Verdict | None:
    """The verdict without the time the requests were given (which varies run to run)."""
    verdict = getattr(resolution, "verdict", None)
    return None if verdict is None else dataclasses.replace(verdict, given=None)


def _hanging() -> FakeDatabase:
    database = FakeDatabase()
    database.mode = "hang"
    return database


async def test_a_database_that_raises_is_a_bad_response_not_a_crash() -> None:
    """A source raising from fetch fails every component with bad_response and the snapshot serves them."""
    database = FakeDatabase()
    database.mode = "raise"
    resolution = await _run(database)
    provenance = resolution.config.provenance["theme"]
    assert provenance.source is Source.SNAPSHOT and provenance.reason is Reason.BAD_RESPONSE
    assert "fake database crashed" in (provenance.detail or "")


async def test_no_database_is_snapshot_mode() -> None:
    """Without a database every component is marked not_configured and comes from the floor."""
    resolution = await _run(None)
    assert {p.reason for p in resolution.config.provenance.values()} == {Reason.NOT_CONFIGURED}
    assert resolution.database_ok is None


async def test_a_component_in_no_source_raises() -> None:
    """A component no source can supply makes the resolution fail, naming it."""
    database = FakeDatabase()
    database.mode = "refuse"
    values = {k: v for k, v in snapshot_values().items() if k != "models.tts"}
    with pytest.raises(ConfigUnavailableError, match="models.tts"):
        await _run(database, FakeLocal(Source.SNAPSHOT, values))


async def test_a_skipped_database_is_not_asked_and_failures_name_its_tables() -> None:
    """When the state says skip, the database is not asked; failures name the tables it reported before."""
    database = FakeDatabase()
    database.mode = "refuse"
    locations = Locations(database)
    await _run(database, locations=locations)
    database.mode = "answer"
    skipped = await _run(database, skip=Skip("circuit breaker open"), locations=locations)
    assert len(database.reads) == 1 and skipped.database_ok is None and skipped.verdict is None
    [event] = [e for e in skipped.events if e.component == "nodes.verify"]
    assert event.failure.reason is Reason.CIRCUIT_OPEN and event.failure.location == "fake_nodes_table"
    assert event.failure.detail == "circuit breaker open"


async def test_a_located_source_names_tables_it_was_never_asked_for() -> None:
    """A database with location() names each table even when it was skipped before it ever answered."""
    resolution = await _run(LocatedDatabase(), skip=Skip("down"))
    failure = next(e.failure for e in resolution.events if e.component == "models.llm")
    assert failure.location == "livekit_fake_models_table"


@pytest.mark.parametrize(
    ("mode", "verdict"),
    [
        ("answer", Verdict(True)),
        ("refuse", Verdict(False, "connection refused")),
        ("hang", Verdict(False, "database source did not return within the deadline", timed_out=True)),
    ],
)
async def test_the_verdict_says_what_the_database_did(mode: str, verdict: Verdict) -> None:
    """An answer, a refusal and a timeout each give their verdict; none of them is a stall."""
    database = FakeDatabase()
    database.mode = mode
    resolution = await _run(database, deadline=0.1)
    assert _said(resolution) == verdict and not resolution.stalled


async def test_bad_data_is_a_verdict_that_the_database_answered() -> None:
    """A component with invalid content falls back alone; the database answered, so the verdict is ok."""
    database = FakeDatabase()
    database.broken = {"theme"}
    resolution = await _run(database)
    assert _said(resolution) == Verdict(True) and [e.component for e in resolution.events] == ["theme"]


async def test_an_answer_that_arrived_while_the_loop_was_blocked_is_read_not_timed_out() -> None:
    """A deadline this process reached late gives the read a grace: the answer that arrived is used."""
    database = FakeDatabase()
    database.mode = "hang"
    blocked = asyncio.ensure_future(answer_while_blocked(database, answer_after=0.05, block=0.5))
    resolution = await _run(database, deadline=0.2)
    await blocked
    assert _said(resolution) == Verdict(True) and not resolution.events
    assert {p.source for p in resolution.config.provenance.values()} == {Source.DATABASE}


async def test_a_hanging_database_is_still_a_timeout_when_the_loop_was_blocked() -> None:
    """A busy process (a burst of calls) does not excuse a database that never answers: the verdict is a timeout."""
    blocker = block_loop(0.5)
    started = time.perf_counter()
    resolution = await _run(_hanging(), deadline=0.2)
    await blocker
    assert resolution.verdict is not None and resolution.verdict.timed_out
    assert time.perf_counter() - started < 0.5 + 0.25 + 0.2  # the block, at most the grace, some slack


async def test_a_resolution_survives_the_states_json() -> None:
    """A degraded resolution decodes to the same config, fallback events and database facts."""
    database = FakeDatabase()
    database.mode = "refuse"
    resolution = await _run(database)
    decoded = decode_resolution(encode_resolution(resolution))
    assert decoded.config == resolution.config
    assert [(e.component, e.failure.reason, e.used_source, e.used.taken_at) for e in decoded.events] == [
        (e.component, e.failure.reason, e.used_source, e.used.taken_at) for e in resolution.events
    ]
    assert (decoded.database_ok, decoded.healthy) == (resolution.database_ok, resolution.healthy)
