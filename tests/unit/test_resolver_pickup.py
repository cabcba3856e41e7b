"""Pickups never wait on the database when the machine has a copy; a stalled process is not a database outage."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from livekit_fallback import Resolver
from livekit_fallback.config.model import Source
from livekit_fallback.config.sources.snapshot import SnapshotSource

from .conftest import Machine
from .fakes import DB_LLM, VERTICAL, FakeClock, FakeDatabase, answer_while_blocked
from .test_resolver import Recorder

pytestmark = pytest.mark.unit

BUDGET = 0.05
DEADLINE = 2.0
"""Long enough that a pickup which waited for the database could not be mistaken for one that did not."""


def _resolver(database: FakeDatabase, clock: FakeClock, machine: Machine, **options: object) -> Resolver:
    options = {"pickup_budget": BUDGET, "deadline": DEADLINE, "ttl": 5.0, "cool_down": 5.0, **options}
    return Resolver(database=database, snapshots=SnapshotSource(), state=machine(), clock=clock, **options)  # type: ignore[arg-type]


def _events(caplog: pytest.LogCaptureFixture, name: str) -> int:
    return sum(getattr(r, "event", None) == name for r in caplog.records)


async def _timed(resolver: Resolver) -> tuple[float, str]:
    started = time.perf_counter()
    config = await resolver.resolve(VERTICAL)
    return time.perf_counter() - started, config.models.llm.value


async def test_a_pickup_with_a_copy_waits_at_most_the_budget_for_a_hanging_database(machine: Machine) -> None:
    """Past the TTL with the database hanging, the pickup gets the stored copy instead of waiting the deadline."""
    database, clock, recorder = FakeDatabase(), FakeClock(), Recorder()
    async with _resolver(database, clock, machine, observers=[recorder]) as resolver:
        await resolver.resolve(VERTICAL)
        clock.advance(6.0)
        database.mode = "hang"
        waited, llm = await _timed(resolver)
        assert llm == DB_LLM and waited < DEADLINE / 4 and recorder.served == ["miss", "stale"]
        assert len(database.reads) == 2, "the refresh was started"
        database.release.set()


async def test_a_pickup_takes_a_fresh_read_that_lands_within_the_budget(machine: Machine) -> None:
    """A refresh that answers inside the budget is what the pickup is served."""
    database, clock, recorder = FakeDatabase(), FakeClock(), Recorder()
    async with _resolver(database, clock, machine, observers=[recorder], pickup_budget=1.0) as resolver:
        await resolver.resolve(VERTICAL)
        clock.advance(6.0)
        await resolver.resolve(VERTICAL)
    assert recorder.served == ["miss", "miss"] and len(database.reads) == 2


async def test_the_refresh_keeps_running_after_the_pickup_and_lands_in_the_state(machine: Machine) -> None:
    """A refresh the pickup stopped waiting for is not cancelled: its config replaces the copy for every process."""
    database, clock = FakeDatabase(), FakeClock()
    async with _resolver(database, clock, machine) as resolver:
        await resolver.resolve(VERTICAL)
        stored_before = await resolver.state.config(VERTICAL, "livekit")
        clock.advance(6.0)
        database.mode = "hang"
        await resolver.resolve(VERTICAL)
        clock.advance(0.5)
        database.release.set()
        for _ in range(100):
            stored = await resolver.state.config(VERTICAL, "livekit")
            if stored != stored_before:
                break
            await asyncio.sleep(0.01)
        assert stored is not None and stored_before is not None and stored.read_at == stored_before.read_at + 6.5
        assert not stored.degraded
        recorder = Recorder()
        resolver.observers = (*resolver.observers, recorder)
        await resolver.resolve(VERTICAL)
    assert recorder.served == ["hit"] and len(database.reads) == 2


async def test_a_probe_runs_in_the_background_of_the_pickup(machine: Machine) -> None:
    """After the cool-down the probing pickup gets the degraded copy at once while the probe waits on the database."""
    database, clock = FakeDatabase(), FakeClock()
    database.mode = "hang"
    async with _resolver(database, clock, machine, deadline=0.3) as resolver:
        first = await resolver.resolve(VERTICAL)
        assert first.is_degraded and (await resolver.state.breaker()).state == "open"
        clock.advance(5.0)
        waited, _ = await _timed(resolver)
        assert waited < 0.3 and len(database.reads) == 2
        assert (await resolver.state.breaker()).state == "half_open"
        database.release.set()


async def test_only_a_machine_without_a_copy_waits_for_the_database(machine: Machine) -> None:
    """With nothing stored, the first pickup waits for the read (up to the deadline) and gets the database's config."""
    database, clock = FakeDatabase(), FakeClock()
    database.mode = "hang"
    async with _resolver(database, clock, machine) as resolver:
        pickup = asyncio.ensure_future(resolver.resolve(VERTICAL))
        await asyncio.sleep(BUDGET * 3)
        assert not pickup.done(), "no copy: the pickup waits for the database"
        database.release.set()
        config = await pickup
    assert config.models.llm.value == DB_LLM and config.provenance["theme"].source is Source.DATABASE


async def test_an_answer_read_late_by_a_blocked_process_is_not_an_outage(
    machine: Machine, caplog: pytest.LogCaptureFixture
) -> None:
    """The database answered while this process's loop was blocked past the deadline: served and stored, no banner."""
    caplog.set_level(logging.INFO, logger="livekit_fallback")
    database, clock = FakeDatabase(), FakeClock()
    database.mode = "hang"
    async with _resolver(database, clock, machine, deadline=0.3) as resolver:
        blocked = asyncio.ensure_future(answer_while_blocked(database, answer_after=0.05, block=0.6))
        served = await resolver.resolve(VERTICAL)
        await blocked
        assert served.models.llm.value == DB_LLM and not served.is_degraded
        breaker = await resolver.state.breaker()
        assert breaker.state == "closed" and breaker.failures == 0
        assert await resolver.state.config(VERTICAL, "livekit") is not None
    assert _events(caplog, "config_fallback") == 0


async def test_a_refresh_blocked_in_a_busy_process_leaves_the_next_calls_on_the_database(
    machine: Machine, caplog: pytest.LogCaptureFixture
) -> None:
    """A process blocked while its refresh is in flight keeps the breaker closed; the next call reads the database."""
    caplog.set_level(logging.INFO, logger="livekit_fallback")
    database, clock, recorder = FakeDatabase(), FakeClock(), Recorder()
    options = {"deadline": 0.3, "pickup_budget": 0.05, "observers": [recorder]}
    async with _resolver(database, clock, machine, **options) as resolver:
        await resolver.resolve(VERTICAL)
        clock.advance(6.0)
        database.mode, database.release = "hang", asyncio.Event()
        served = await resolver.resolve(VERTICAL)  # the copy, at the budget; the refresh goes on
        assert served.models.llm.value == DB_LLM and not served.is_degraded
        await answer_while_blocked(database, answer_after=0.05, block=0.6)
        await asyncio.sleep(0.3)  # the refresh reads the answer in its grace
        assert (await resolver.state.breaker()).failures == 0
        database.mode = "answer"
        clock.advance(6.0)
        await resolver.resolve(VERTICAL)
    assert len(database.reads) == 3 and recorder.served == ["miss", "stale", "miss"]
    assert _events(caplog, "config_fallback") == 0
