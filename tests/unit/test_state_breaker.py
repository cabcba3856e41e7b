"""The database circuit breaker of a deployment, per storage: opening, one probe per cool-down, closing."""

from __future__ import annotations

import pytest

from livekit_fallback.config.state.policy import Verdict
from livekit_fallback.config.state.records import BreakerRecord, Plan
from livekit_fallback.config.state.state import ResolutionState

from .conftest import DEPLOYMENT, POLICY, Machine
from .fakes import FakeClock

pytestmark = pytest.mark.unit

V, P = "rm", "livekit"
REFUSED = Verdict(False, "connection refused")
HUNG = Verdict(False, "did not answer", timed_out=True)


async def _read(state: ResolutionState, verdict: Verdict | None) -> BreakerRecord:
    """One call that plans, reads and records what the read said about the database."""
    plan = await state.plan(V, P, holder=state.new_holder(), fresh=True)
    return await state.finish(
        V, P, holder=plan.holder, payload="{}", degraded=not (verdict and verdict.ok), verdict=verdict, probe=plan.probe
    )


async def _plan(state: ResolutionState) -> Plan:
    return await state.plan(V, P, holder=state.new_holder(), fresh=True)


async def _open(state: ResolutionState) -> BreakerRecord:
    return await _read(state, HUNG)


async def test_failures_count_across_processes_and_open_it_at_the_threshold(
    processes: tuple[ResolutionState, ResolutionState],
) -> None:
    """Refused reads in any process count toward one threshold; below it the breaker stays closed."""
    a, b = processes
    states = [(await _read(state, REFUSED)).state for state in (a, b, a)]
    assert states == ["closed", "closed", "open"]
    record = await b.breaker()
    assert record.failures == POLICY.failure_threshold and record.last_error == "connection refused"


async def test_an_answer_resets_the_count(processes: tuple[ResolutionState, ResolutionState]) -> None:
    """A read the database answered closes the count: two failures, a success, two failures stay closed."""
    a, b = processes
    for verdict in (REFUSED, REFUSED, Verdict(True), REFUSED, REFUSED):
        record = await _read(a, verdict)
    assert record.state == "closed" and record.failures == 2 and (await b.breaker()).state == "closed"


async def test_one_timeout_opens_it_at_once(processes: tuple[ResolutionState, ResolutionState]) -> None:
    """A read that ran out of time opens the breaker for the whole machine without waiting for the threshold."""
    a, b = processes
    record = await _open(a)
    assert record.state == "open" and record.failures == 1 and record.opened_at is not None
    plan = await _plan(b)
    assert not plan.database and not plan.probe and plan.breaker.state == "open"


async def test_after_the_cool_down_exactly_one_probe_per_machine(
    processes: tuple[ResolutionState, ResolutionState], clock: FakeClock
) -> None:
    """Inside the cool-down nobody reads; after it one call of one process probes and every other call does not."""
    a, b = processes
    await _open(a)
    clock.advance(POLICY.cool_down - 0.01)
    assert not (await _plan(b)).database
    clock.advance(0.01)
    probe = await _plan(b)
    assert probe.database and probe.probe and probe.reads
    assert (await a.breaker()).state == "half_open"
    for state in (a, b):
        other = await _plan(state)
        assert not other.database and not other.probe


async def test_a_successful_probe_closes_it(
    processes: tuple[ResolutionState, ResolutionState], clock: FakeClock
) -> None:
    """The probe's answer closes the breaker machine-wide and clears the error."""
    a, b = processes
    await _open(a)
    clock.advance(POLICY.cool_down)
    probe = await _plan(a)
    closed = await a.finish(V, P, holder=probe.holder, payload="{}", degraded=False, verdict=Verdict(True), probe=True)
    assert closed == BreakerRecord() and (await b.breaker()) == BreakerRecord()
    assert (await _plan(b)).database


async def test_a_failed_probe_reopens_it_for_a_full_cool_down(
    processes: tuple[ResolutionState, ResolutionState], clock: FakeClock
) -> None:
    """A probe that fails (even a fast refusal) opens the breaker again from now."""
    a, b = processes
    await _open(a)
    clock.advance(POLICY.cool_down + 1)
    probe = await _plan(a)
    again = await a.finish(V, P, holder=probe.holder, payload="{}", degraded=True, verdict=REFUSED, probe=True)
    assert again.state == "open" and again.opened_at == clock.now and again.last_error == "connection refused"
    clock.advance(POLICY.cool_down - 0.5)
    assert not (await _plan(b)).database
    clock.advance(0.5)
    assert (await _plan(b)).probe


async def test_a_probe_without_a_verdict_goes_back_to_open_and_is_due_again(
    processes: tuple[ResolutionState, ResolutionState], clock: FakeClock
) -> None:
    """A probe that said nothing about the database (a stall) leaves it open, and the next call probes at once."""
    a, b = processes
    opened = await _open(a)
    clock.advance(POLICY.cool_down)
    probe = await _plan(a)
    after = await a.finish(V, P, holder=probe.holder, payload=None, degraded=False, verdict=None, probe=True)
    record = await b.breaker()
    assert (record.state, record.failures, record.opened_at) == ("open", 1, opened.opened_at)
    assert after == record, "finish returns the breaker after the update"
    assert (await _plan(b)).probe, "no new cool-down: the probe is due again"


async def test_a_released_probe_frees_the_slot(
    processes: tuple[ResolutionState, ResolutionState], clock: FakeClock
) -> None:
    """A probe cancelled before its verdict gives up its lease: the next call probes."""
    a, b = processes
    await _open(a)
    clock.advance(POLICY.cool_down)
    probe = await _plan(a)
    assert not (await _plan(b)).probe
    await a.release(V, P, holder=probe.holder, probe=True)
    assert (await _plan(b)).probe


async def test_a_dead_probes_lease_runs_out(
    processes: tuple[ResolutionState, ResolutionState], clock: FakeClock
) -> None:
    """A probing process that died holds the probe only until its lease ends."""
    a, b = processes
    await _open(a)
    clock.advance(POLICY.cool_down)
    assert (await _plan(a)).probe
    clock.advance(POLICY.lease_for + 0.1)
    assert (await _plan(b)).probe


async def test_an_opened_at_in_the_future_is_probed(machine: Machine, clock: FakeClock) -> None:
    """A breaker opened by a process whose clock ran ahead is not trusted to cool down: the next call probes."""
    fast = ResolutionState(machine(), DEPLOYMENT, POLICY, clock=FakeClock(clock.now + 3600))
    normal = ResolutionState(machine(), DEPLOYMENT, POLICY, clock=clock)
    await _open(fast)
    plan = await _plan(normal)
    assert plan.breaker.state == "open" and plan.probe and plan.database


def test_the_cool_down_is_read_from_the_record() -> None:
    """cooling_down is true only for an open breaker inside its cool-down from opened_at."""
    record = BreakerRecord("open", 3, 100.0, "x")
    assert record.cooling_down(104.9, 5.0) and not record.cooling_down(105.0, 5.0)
    assert not record.cooling_down(99.0, 5.0)
    assert not BreakerRecord("half_open", 3, 100.0).cooling_down(101.0, 5.0)
    assert not BreakerRecord().cooling_down(101.0, 5.0)
