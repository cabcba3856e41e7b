"""What a resolution reuses and who reads the database, per storage: TTL, stale copies, single flight, leases."""

from __future__ import annotations

import subprocess
import sys

import pytest

from livekit_fallback.config.state.policy import Policy, Verdict
from livekit_fallback.config.state.state import ResolutionState

from .conftest import DEPLOYMENT, POLICY, Machine
from .fakes import FakeClock

pytestmark = pytest.mark.unit

V, P = "rm", "livekit"


async def _store(state: ResolutionState, payload: str = '{"x": 1}', *, degraded: bool = False) -> None:
    """One call reads and stores a config (the breaker told the database answered)."""
    plan = await state.plan(V, P, holder=state.new_holder(), fresh=True)
    await state.finish(
        V, P, holder=plan.holder, payload=payload, degraded=degraded, verdict=Verdict(True), probe=plan.probe
    )


async def test_nothing_stored_one_call_reads_and_the_others_wait(
    processes: tuple[ResolutionState, ResolutionState],
) -> None:
    """Single flight: with no copy the first call reads; every other call, in any process, waits for it."""
    a, b = processes
    reader = await a.plan(V, P, holder=a.new_holder())
    assert (reader.cache, reader.reads, reader.refresh, reader.entry) == ("miss", True, True, None)
    for state in (b, a):
        waiting = await state.plan(V, P, holder=state.new_holder())
        assert waiting.cache == "wait" and not waiting.reads and not waiting.database
    await a.finish(V, P, holder=reader.holder, payload="{}", degraded=False, verdict=Verdict(True), probe=False)
    assert (await b.plan(V, P, holder=b.new_holder())).cache == "hit"


async def test_a_healthy_copy_is_a_hit_for_every_process_within_the_ttl(
    processes: tuple[ResolutionState, ResolutionState], clock: FakeClock
) -> None:
    """Inside the TTL another process is served the stored config without reading the database."""
    a, b = processes
    await _store(a, '{"x": 1}')
    clock.advance(POLICY.ttl - 0.01)
    hit = await b.plan(V, P, holder=b.new_holder())
    assert hit.cache == "hit" and hit.entry is not None and hit.entry.payload == '{"x": 1}' and not hit.reads


async def test_past_the_ttl_the_copy_is_served_and_one_call_per_machine_refreshes(
    processes: tuple[ResolutionState, ResolutionState], clock: FakeClock
) -> None:
    """A stale copy is served to every call; exactly one of them holds the refresh lease and reads."""
    a, b = processes
    await _store(a)
    clock.advance(POLICY.ttl)
    refresher = await b.plan(V, P, holder=b.new_holder())
    assert refresher.cache == "stale" and refresher.entry is not None and refresher.refresh and refresher.reads
    for state in (a, b):
        other = await state.plan(V, P, holder=state.new_holder())
        assert other.cache == "stale" and other.entry is not None and not other.reads
    clock.advance(POLICY.stale_for + 600)
    late = await a.plan(V, P, holder=a.new_holder())
    assert late.cache == "stale" and late.entry is not None, "any copy is served rather than waiting"


async def test_a_finished_refresh_is_the_next_hit(
    processes: tuple[ResolutionState, ResolutionState], clock: FakeClock
) -> None:
    """The refresher's config replaces the copy and frees its lease."""
    a, b = processes
    await _store(a, '{"v": 1}')
    clock.advance(POLICY.ttl + 1)
    refresher = await a.plan(V, P, holder=a.new_holder())
    await a.finish(
        V, P, holder=refresher.holder, payload='{"v": 2}', degraded=False, verdict=Verdict(True), probe=False
    )
    hit = await b.plan(V, P, holder=b.new_holder())
    assert hit.cache == "hit" and hit.entry is not None and hit.entry.payload == '{"v": 2}'


async def test_fresh_ignores_the_copy(processes: tuple[ResolutionState, ResolutionState]) -> None:
    """fresh=True never serves the stored config: the call reads (or waits for the one reading)."""
    a, b = processes
    await _store(a)
    fresh = await b.plan(V, P, holder=b.new_holder(), fresh=True)
    assert fresh.cache == "miss" and fresh.entry is None and fresh.reads


async def test_zero_ttl_never_reuses_a_config(machine: Machine, clock: FakeClock) -> None:
    """With ttl=0 every call reads: no stored config is ever served."""
    state = ResolutionState(machine(), DEPLOYMENT, Policy(ttl=0.0, lease_for=2.0), clock=clock)
    await _store(state)
    plan = await state.plan(V, P, holder=state.new_holder())
    assert plan.cache == "miss" and plan.entry is None and plan.reads


async def test_a_config_read_in_the_future_is_stale_not_a_hit(
    processes: tuple[ResolutionState, ResolutionState], clock: FakeClock
) -> None:
    """A copy stamped ahead of this clock (a process whose clock ran fast) is not trusted as fresh."""
    a, b = processes
    clock.advance(30.0)
    await _store(a)
    clock.advance(-30.0)
    plan = await b.plan(V, P, holder=b.new_holder())
    assert plan.cache == "stale" and plan.entry is not None and plan.reads and plan.overdue


@pytest.mark.parametrize(("later", "overdue"), [(POLICY.lease_for - 0.5, False), (POLICY.lease_for + 0.1, True)])
async def test_a_copy_whose_refresh_never_landed_is_overdue(
    processes: tuple[ResolutionState, ResolutionState], clock: FakeClock, later: float, overdue: bool
) -> None:
    """A refresh started and abandoned (its process exited): a lease's time later, the next reader waits for it."""
    a, b = processes
    await _store(a)
    clock.advance(POLICY.ttl + 0.1)
    first = await a.plan(V, P, holder=a.new_holder())
    assert first.cache == "stale" and first.reads and not first.overdue
    await a.release(V, P, holder=first.holder, probe=False)  # cancelled at exit: released, never landed
    clock.advance(later)
    plan = await b.plan(V, P, holder=b.new_holder())
    assert plan.cache == "stale" and plan.reads and plan.overdue is overdue


async def test_a_refresh_that_lands_leaves_nothing_overdue(
    processes: tuple[ResolutionState, ResolutionState], clock: FakeClock
) -> None:
    """A long-lived process's refreshes land: however long it was idle, its next pickup does not wait."""
    a, b = processes
    await _store(a)
    clock.advance(POLICY.ttl + 0.1)
    first = await a.plan(V, P, holder=a.new_holder())
    await a.finish(V, P, holder=first.holder, payload="{}", degraded=False, verdict=Verdict(True), probe=False)
    clock.advance(POLICY.ttl + POLICY.lease_for + 100)
    assert not (await b.plan(V, P, holder=b.new_holder())).overdue


async def test_the_first_refresh_of_an_old_degraded_copy_does_not_wait(
    processes: tuple[ResolutionState, ResolutionState], clock: FakeClock
) -> None:
    """During an outage the copy is served at once, however old, until a refresh was abandoned."""
    a, b = processes
    await _store(a, degraded=True)
    clock.advance(POLICY.ttl + POLICY.lease_for + 10)
    assert not (await b.plan(V, P, holder=b.new_holder())).overdue


async def test_a_lease_of_an_ended_process_is_taken_over_at_once(machine: Machine, clock: FakeClock) -> None:
    """A script that exited mid-refresh keeps nobody from reading: its lease is taken over before it ends."""
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    state = ResolutionState(machine(), DEPLOYMENT, POLICY, clock=clock)
    await state.plan(V, P, holder=f"{ended.stdout.strip()}:gone:1")
    plan = await state.plan(V, P, holder=state.new_holder())
    assert plan.cache == "miss" and plan.reads


async def test_a_dead_readers_lease_runs_out(
    processes: tuple[ResolutionState, ResolutionState], clock: FakeClock
) -> None:
    """A reader that never finishes keeps others waiting only until its lease ends; then one takes over."""
    a, b = processes
    await a.plan(V, P, holder=a.new_holder())
    assert (await b.plan(V, P, holder=b.new_holder())).cache == "wait"
    clock.advance(POLICY.lease_for + 0.1)
    takeover = await b.plan(V, P, holder=b.new_holder())
    assert takeover.cache == "miss" and takeover.reads


async def test_a_lease_ending_implausibly_far_ahead_is_taken_over(machine: Machine, clock: FakeClock) -> None:
    """A lease written by a process whose clock was an hour ahead does not block this machine for an hour."""
    ahead = FakeClock(clock.now + 3600)
    fast = ResolutionState(machine(), DEPLOYMENT, POLICY, clock=ahead)
    normal = ResolutionState(machine(), DEPLOYMENT, POLICY, clock=clock)
    await fast.plan(V, P, holder=fast.new_holder())
    plan = await normal.plan(V, P, holder=normal.new_holder())
    assert plan.cache == "miss" and plan.reads


async def test_a_degraded_copy_is_served_while_one_call_reads_again(
    processes: tuple[ResolutionState, ResolutionState],
) -> None:
    """With the breaker closed a degraded copy is never a hit: one call re-reads, the others get the copy."""
    a, b = processes
    await _store(a, degraded=True)
    again = await a.plan(V, P, holder=a.new_holder())
    assert again.cache == "stale" and again.reads
    other = await b.plan(V, P, holder=b.new_holder())
    assert other.cache == "stale" and other.entry is not None and other.entry.degraded and not other.reads


async def test_a_degraded_copy_is_a_hit_while_the_breaker_cools_down(
    processes: tuple[ResolutionState, ResolutionState],
) -> None:
    """While the breaker is open nobody reads: the degraded copy is served to every call as it is."""
    a, b = processes
    plan = await a.plan(V, P, holder=a.new_holder())
    await a.finish(
        V, P, holder=plan.holder, payload="{}", degraded=True, verdict=Verdict(False, "hung", True), probe=False
    )
    cooling = await b.plan(V, P, holder=b.new_holder())
    assert cooling.cache == "hit" and cooling.entry is not None and cooling.entry.degraded and not cooling.reads


async def test_a_released_lease_frees_the_refresh(processes: tuple[ResolutionState, ResolutionState]) -> None:
    """A read that ended without a result gives up its lease: the next call reads at once instead of waiting."""
    a, b = processes
    reader = await a.plan(V, P, holder=a.new_holder())
    await a.release(V, P, holder=reader.holder, probe=False)
    assert (await b.plan(V, P, holder=b.new_holder())).reads


def test_nonsense_numbers_are_refused() -> None:
    """A threshold below one, a non-positive cool-down or lease, or a negative TTL is a ValueError."""
    for bad in ({"failure_threshold": 0}, {"cool_down": 0}, {"ttl": -1}, {"lease_for": 0}):
        with pytest.raises(ValueError):
            Policy(**bad)  # type: ignore[arg-type]
