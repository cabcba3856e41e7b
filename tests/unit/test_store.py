"""The machine-wide store: one decision per machine for cache, breaker, leases and alarms."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from pathlib import Path

import pytest

from livekit_fallback.config.store import STATE_FILE, MachineStore
from livekit_fallback.errors import StoreUnavailable

pytestmark = pytest.mark.unit


class Clock:
    """A wall clock the test moves by hand, shared by the stores of one 'machine'."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


PLAN = {"ttl": 60.0, "stale_for": 60.0, "cool_down": 5.0, "lease_for": 2.0}


def _same(a: str, b: str) -> bool:
    return a == b


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def stores(tmp_path: Path, clock: Clock) -> list[MachineStore]:
    """Two processes' views of one machine's store (distinct lease holders)."""
    made = [MachineStore(tmp_path, clock=clock, op_timeout=1.0) for _ in range(2)]
    yield made
    for store in made:
        store.close()


async def test_a_fresh_healthy_copy_is_served_by_every_process(stores: list[MachineStore], clock: Clock) -> None:
    """One process's healthy resolution is a hit for another within the TTL, and a miss after TTL plus stale_for."""
    a, b = stores
    first = await a.begin("rm", "livekit", **PLAN)
    assert first.cache == "miss" and first.refresh and first.database
    await a.finish("rm", "livekit", payload='{"x": 1}', degraded=False, database_ok=True, holder=first.holder)
    hit = await b.begin("rm", "livekit", **PLAN)
    assert hit.cache == "hit" and hit.entry is not None and hit.entry.payload == '{"x": 1}' and not hit.database
    clock.now += 61
    stale = await b.begin("rm", "livekit", **PLAN)
    assert stale.cache == "stale" and stale.refresh and stale.database
    other = await a.begin("rm", "livekit", **PLAN)
    assert other.cache == "stale" and not other.refresh, "one refresh per machine"
    clock.now += 60
    assert (await a.begin("rm", "livekit", **PLAN)).cache in {"miss", "wait"}


async def test_concurrent_misses_make_one_reader_and_the_rest_wait(stores: list[MachineStore]) -> None:
    """With nothing stored, the first process reads; the second waits for it instead of reading too."""
    a, b = stores
    reader = await a.begin("rm", "livekit", **PLAN)
    assert reader.cache == "miss"
    waiting = await b.begin("rm", "livekit", **PLAN)
    assert waiting.cache == "wait" and not waiting.database
    assert (await a.begin("rm", "livekit", **PLAN)).cache == "wait", "a second call in the same process waits too"
    await a.finish("rm", "livekit", payload="{}", degraded=False, database_ok=True, holder=reader.holder)
    assert (await b.begin("rm", "livekit", **PLAN)).cache == "hit"


async def test_a_dead_readers_lease_expires(stores: list[MachineStore], clock: Clock) -> None:
    """A reader that never finishes blocks others only until its lease runs out."""
    a, b = stores
    await a.begin("rm", "livekit", **PLAN)
    assert (await b.begin("rm", "livekit", **PLAN)).cache == "wait"
    clock.now += PLAN["lease_for"] + 0.1
    assert (await b.begin("rm", "livekit", **PLAN)).cache == "miss"


async def test_breaker_opens_machine_wide_and_lets_one_probe_through(stores: list[MachineStore], clock: Clock) -> None:
    """A timed-out read opens the breaker for every process; after the cool-down exactly one probes."""
    a, b = stores
    await a.begin("rm", "livekit", **PLAN)
    breaker = await a.finish(
        "rm", "livekit", payload="{}", degraded=True, database_ok=False, error="timeout", timed_out=True
    )
    assert breaker.state == "open" and breaker.failures == 1
    cooling = await b.begin("rm", "livekit", **PLAN)
    assert cooling.cache == "hit" and cooling.entry is not None and cooling.entry.degraded and not cooling.database
    clock.now += PLAN["cool_down"] + 0.1
    probe = await b.begin("rm", "livekit", **PLAN)
    assert probe.database and probe.probe and probe.breaker.state == "open"
    other = await a.begin("rm", "livekit", **PLAN)
    assert not other.database and not other.probe
    same_process = await b.begin("rm", "livekit", **PLAN)
    assert same_process.cache == "hit" and not same_process.database, "a call during a probe is served at once"
    closed = await b.finish(
        "rm", "livekit", payload="{}", degraded=False, database_ok=True, probe=True, holder=probe.holder
    )
    assert closed.state == "closed" and closed.failures == 0
    assert (await a.begin("rm", "livekit", **PLAN)).cache == "hit"


async def test_a_degraded_copy_is_served_while_another_call_reads_again(stores: list[MachineStore]) -> None:
    """With the breaker closed, one call re-reads after a degraded resolution; the others get the copy at once."""
    a, b = stores
    first = await a.begin("rm", "livekit", **PLAN)
    await a.finish("rm", "livekit", payload="{}", degraded=True, database_ok=True, holder=first.holder)
    again = await a.begin("rm", "livekit", **PLAN)
    assert again.cache == "miss" and again.database and again.refresh
    other = await b.begin("rm", "livekit", **PLAN)
    assert other.cache == "hit" and other.entry is not None and other.entry.degraded and not other.database


async def test_failed_probe_reopens_for_another_cool_down(stores: list[MachineStore], clock: Clock) -> None:
    """A probe that fails opens the breaker again at once, whatever the failure count."""
    a, _ = stores
    await a.finish("rm", "livekit", payload="{}", degraded=True, database_ok=False, error="x", timed_out=True)
    clock.now += 6
    probe = await a.begin("rm", "livekit", **PLAN)
    assert probe.probe
    again = await a.finish("rm", "livekit", payload="{}", degraded=True, database_ok=False, error="y", probe=True)
    assert again.state == "open" and again.opened_at == clock.now and again.last_error == "y"


async def test_refused_reads_open_after_the_threshold(stores: list[MachineStore]) -> None:
    """Fast failures count machine-wide and open the breaker at the threshold."""
    a, b = stores
    states = []
    for store in (a, b, a):
        record = await store.finish("rm", "livekit", payload=None, degraded=True, database_ok=False, error="refused")
        states.append(record.state)
    assert states == ["closed", "closed", "open"]


async def test_alarms_banner_once_per_machine_then_count(stores: list[MachineStore], clock: Clock) -> None:
    """The first fallback of a component is bannered once for the machine; repeats are counted lines."""
    a, b = stores
    events = [("nodes.verify", "timeout")]
    opts = {"repeat_interval": 60.0, "same_problem": _same}
    first, _ = await a.alarms("rm", "livekit", events, [], **opts)
    second, _ = await b.alarms("rm", "livekit", events, [], **opts)
    assert [d.action for d in first + second] == ["banner", "quiet"]
    clock.now += 61
    third, _ = await a.alarms("rm", "livekit", events, [], **opts)
    assert third[0].action == "repeat" and third[0].since_line == 2 and third[0].total == 3
    changed, _ = await b.alarms("rm", "livekit", [("nodes.verify", "invalid_content")], [], **opts)
    assert changed[0].action == "banner", "a different problem is a new incident"


async def test_recovery_is_reported_once_with_the_outage(stores: list[MachineStore], clock: Clock) -> None:
    """When every component is healthy again, one process reports the recovery with duration and count."""
    a, b = stores
    opts = {"repeat_interval": 60.0, "same_problem": _same}
    await a.alarms("rm", "livekit", [("theme", "unreachable")], [], **opts)
    await b.alarms("rm", "livekit", [("theme", "unreachable")], [], **opts)
    clock.now += 30
    _, recovery = await b.alarms("rm", "livekit", [], ["theme"], **opts)
    assert recovery is not None and recovery.resolutions == 2 and recovery.seconds == 30
    _, again = await a.alarms("rm", "livekit", [], ["theme"], **opts)
    assert again is None


async def test_notices_are_once_per_machine_or_per_interval(stores: list[MachineStore], clock: Clock) -> None:
    """A notice is logged by the first process only, or again once its interval has passed."""
    a, b = stores
    assert await a.notice("snapshot-mode:rm/livekit") and not await b.notice("snapshot-mode:rm/livekit")
    assert await a.notice("problem", 60) and not await b.notice("problem", 60)
    clock.now += 61
    assert await b.notice("problem", 60)


async def test_last_known_good_merges_per_component(stores: list[MachineStore]) -> None:
    """Components merge into the machine's copy; an import never overwrites what is there."""
    a, b = stores
    await a.store_last_known_good("rm", "livekit", {"theme": ('"t1"', "2026-01-01T00:00:00+00:00")})
    await b.store_last_known_good("rm", "livekit", {"models.llm": ('"m"', "2026-01-02T00:00:00+00:00")})
    await b.store_last_known_good(
        "rm", "livekit", {"theme": ('"old"', "2025-01-01T00:00:00+00:00")}, only_if_absent=True
    )
    copy = await a.load_last_known_good("rm", "livekit")
    assert copy == {
        "theme": ('"t1"', "2026-01-01T00:00:00+00:00"),
        "models.llm": ('"m"', "2026-01-02T00:00:00+00:00"),
    }


def _corrupt(directory: Path) -> None:
    (directory / STATE_FILE).write_bytes(b"this is not a database" * 100)


def _fifo(directory: Path) -> None:
    os.mkfifo(directory / STATE_FILE)


def _not_a_directory(directory: Path) -> None:
    (directory / "file").write_text("x")


@pytest.mark.parametrize(
    ("break_it", "subdir", "expected"),
    [
        (_corrupt, "", "not a database"),
        (_fifo, "", "not a regular file"),
        (_not_a_directory, "file", "Not a directory"),
    ],
    ids=["corrupt", "fifo", "not-a-directory"],
)
async def test_an_unusable_store_fails_fast_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, break_it: object, subdir: str, expected: str
) -> None:
    """A broken state file raises StoreUnavailable quickly and logs one loud line naming the problem."""
    break_it(tmp_path)  # type: ignore[operator]
    store = MachineStore(tmp_path / subdir, op_timeout=0.5)
    caplog.set_level(logging.ERROR, logger="livekit_fallback")
    for _ in range(3):
        with pytest.raises(StoreUnavailable, match=expected):
            await store.begin("rm", "livekit", **PLAN)
    lines = [r for r in caplog.records if getattr(r, "event", None) == "store_unavailable"]
    assert len(lines) == 1 and expected in lines[0].getMessage() and "MACHINE-WIDE STATE UNAVAILABLE" in lines[0].msg
    store.close()


async def test_a_lock_held_past_the_limit_is_a_timeout_not_a_hang(tmp_path: Path) -> None:
    """Another process holding the write lock makes operations give up within op_timeout."""
    store = MachineStore(tmp_path, op_timeout=0.2)
    await store.notice("warm-up")
    holder = sqlite3.connect(tmp_path / STATE_FILE, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        loop_time = asyncio.get_running_loop().time
        started = loop_time()
        with pytest.raises(StoreUnavailable):
            await store.begin("rm", "livekit", **PLAN)
        assert loop_time() - started < 0.5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        store.close()
