"""A circuit breaker in front of the database, so no call waits on a database known to be down.

Closed: every resolution reads the database. After ``failure_threshold``
consecutive failed reads (or one read that ran out the deadline: a hanging
database costs a full deadline per try) the breaker opens: resolutions skip
the database and use their fallbacks at once. After ``cool_down`` seconds one
probe read is let through (half-open); its success closes the breaker, its
failure opens it for another cool-down.

The resolver and the pipeline depend on the :class:`Breaker` protocol, not on
:class:`CircuitBreaker`, so a breaker whose state is shared by every process
of a machine can take its place.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, runtime_checkable

__all__ = ["Breaker", "BreakerState", "CircuitBreaker"]


class BreakerState(str, Enum):
    """The breaker's state."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@runtime_checkable
class Breaker(Protocol):
    """What the resolver needs of a circuit breaker; :class:`CircuitBreaker` is the in-process one."""

    @property
    def state(self) -> BreakerState:
        """The current state."""
        ...

    @property
    def cool_down(self) -> float:
        """Seconds the breaker stays open before one probe is allowed."""
        ...

    @property
    def cooling_down(self) -> bool:
        """Open and inside the cool-down: a degraded cached config may be served again."""
        ...

    @property
    def last_error(self) -> str | None:
        """The latest database error, secrets removed."""
        ...

    def allow(self) -> bool:
        """Whether a read may go to the database now; claims the probe when half-open."""
        ...

    def record_success(self) -> None:
        """A read reached the database."""
        ...

    def record_failure(self, error: str, *, timed_out: bool = False) -> None:
        """A read failed at the connection or server level."""
        ...

    def release_probe(self) -> None:
        """A claimed probe ended without a verdict (cancelled)."""
        ...

    def describe(self) -> str:
        """A one-line explanation used as the fallback reason while open."""
        ...


@dataclass
class CircuitBreaker:
    """Tracks database health and decides whether a resolution may read it.

    Args:
        failure_threshold: Consecutive failed reads that open the breaker.
        cool_down: Seconds the breaker stays open before one probe is allowed.
        clock: Monotonic clock (injectable for tests).
    """

    failure_threshold: int = 3
    cool_down: float = 5.0
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.cool_down <= 0:
            raise ValueError("failure_threshold must be >= 1 and cool_down > 0")
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_at: float | None = None
        self.last_error: str | None = None
        self._probe_in_flight = False

    @property
    def cooling_down(self) -> bool:
        """Open and inside the cool-down: no read may reach the database yet."""
        return (
            self.state is BreakerState.OPEN
            and self.opened_at is not None
            and self.clock() - self.opened_at < self.cool_down
        )

    def allow(self) -> bool:
        """Whether a read may go to the database now; claims the probe when half-open."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.cooling_down:
            return False
        if self.state is BreakerState.OPEN:
            self.state = BreakerState.HALF_OPEN
        if self._probe_in_flight:
            return False
        self._probe_in_flight = True
        return True

    def record_success(self) -> None:
        """A read reached the database: close the breaker."""
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_at = None
        self.last_error = None
        self._probe_in_flight = False

    def record_failure(self, error: str, *, timed_out: bool = False) -> None:
        """A read failed at the connection or server level; may open the breaker."""
        self.consecutive_failures += 1
        self.last_error = error
        probe_failed = self._probe_in_flight
        self._probe_in_flight = False
        if probe_failed or timed_out or self.consecutive_failures >= self.failure_threshold:
            self.state = BreakerState.OPEN
            self.opened_at = self.clock()

    def release_probe(self) -> None:
        """A claimed probe ended without a verdict (cancelled); let another one through."""
        if self._probe_in_flight:
            self._probe_in_flight = False

    def describe(self) -> str:
        """A one-line explanation used as the fallback reason while open."""
        return (
            f"database skipped: circuit breaker open after {self.consecutive_failures} consecutive failure(s); "
            f"last error: {self.last_error}"
        )
