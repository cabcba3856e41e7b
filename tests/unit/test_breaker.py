"""The circuit breaker on a fake clock: open, half-open, one probe, close or reopen."""

from __future__ import annotations

import pytest

from livekit_fallback.config.breaker import Breaker, BreakerState, CircuitBreaker

from .fakes import FakeClock

pytestmark = pytest.mark.unit


def _breaker(clock: FakeClock, threshold: int = 3) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=threshold, cool_down=5.0, clock=clock)


def test_the_in_process_breaker_fits_the_protocol() -> None:
    """CircuitBreaker is a Breaker, so the resolver can take either."""
    assert isinstance(CircuitBreaker(), Breaker)


def test_consecutive_failures_open_it_and_a_success_resets_the_count() -> None:
    """Failures below the threshold keep it closed; a success resets the count; the threshold opens it."""
    breaker = _breaker(FakeClock())
    breaker.record_failure("a")
    breaker.record_failure("b")
    breaker.record_success()
    breaker.record_failure("c")
    breaker.record_failure("d")
    assert breaker.state is BreakerState.CLOSED and breaker.allow()
    breaker.record_failure("e")
    assert breaker.state is BreakerState.OPEN and breaker.last_error == "e" and not breaker.allow()
    assert "3 consecutive failure(s); last error: e" in breaker.describe()


def test_one_timeout_opens_it_at_once() -> None:
    """A read that ran out the deadline opens the breaker without waiting for the threshold."""
    breaker = _breaker(FakeClock())
    breaker.record_failure("hung", timed_out=True)
    assert breaker.state is BreakerState.OPEN


def test_after_the_cool_down_exactly_one_probe_goes_through() -> None:
    """Inside the cool-down nothing passes; after it one probe passes (half-open) and a second caller does not."""
    clock = FakeClock()
    breaker = _breaker(clock, threshold=1)
    breaker.record_failure("down")
    clock.advance(4.999)
    assert breaker.cooling_down and not breaker.allow()
    clock.advance(0.001)
    assert not breaker.cooling_down
    assert breaker.allow() and breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()


def test_a_successful_probe_closes_it() -> None:
    """The probe's success closes the breaker and clears the error."""
    clock = FakeClock()
    breaker = _breaker(clock, threshold=1)
    breaker.record_failure("down")
    clock.advance(5.0)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.last_error is None and breaker.allow()


def test_a_failed_probe_reopens_it_for_another_cool_down() -> None:
    """The probe's failure opens the breaker again at once, for a full cool-down from then."""
    clock = FakeClock()
    breaker = _breaker(clock, threshold=3)
    for _ in range(3):
        breaker.record_failure("down")
    clock.advance(5.0)
    assert breaker.allow()
    breaker.record_failure("still down")
    assert breaker.state is BreakerState.OPEN and breaker.cooling_down
    clock.advance(4.0)
    assert not breaker.allow()
    clock.advance(1.0)
    assert breaker.allow()


def test_a_released_probe_frees_the_slot() -> None:
    """A probe that ended without a verdict lets the next caller probe."""
    clock = FakeClock()
    breaker = _breaker(clock, threshold=1)
    breaker.record_failure("down")
    clock.advance(5.0)
    assert breaker.allow() and not breaker.allow()
    breaker.release_probe()
    assert breaker.allow()


def test_nonsense_settings_are_refused() -> None:
    """A threshold below one or a non-positive cool-down is a ValueError."""
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(cool_down=0)
