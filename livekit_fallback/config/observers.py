"""Observers of resolutions: health, metrics and alarms, each told what happened.

The resolver resolves; what is reported about it is up to its observers. Each
gets two calls: :meth:`ResolutionObserver.on_read` once per fresh read of the
sources (a background refresh included, shared reads counted once), and
:meth:`ResolutionObserver.on_resolution` once per config handed to a caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from .. import metrics
from .pipeline import Resolution
from .state.records import BreakerRecord
from .status import ComponentStatus, Status, degraded_components

__all__ = ["CacheOutcome", "HealthRecord", "MetricsObserver", "ResolutionObserver"]

CacheOutcome = Literal["hit", "stale", "miss"]
"""How a resolution was served: reused, reused while a fresh read may run, or read now."""

_BREAKER_GAUGE = {"closed": 0, "half_open": 1, "open": 2}


@runtime_checkable
class ResolutionObserver(Protocol):
    """Told about every read and every served resolution; must not raise."""

    def on_read(self, resolution: Resolution) -> None:
        """A fresh read of the sources finished."""
        ...

    def on_resolution(self, resolution: Resolution, cache: CacheOutcome, seconds: float) -> None:
        """A config was handed to a caller.

        Args:
            resolution: What was served.
            cache: ``hit``, ``stale`` or ``miss``.
            seconds: How long the caller waited.
        """
        ...


@dataclass
class HealthRecord:
    """The truthful health record behind :meth:`Resolver.status`.

    Attributes:
        reachable: Result of the latest database read (``None``: none yet).
        since: When ``reachable`` last changed.
        degraded: ``"vertical/platform"`` to its degraded components, from the latest read of each.
    """

    reachable: bool | None = None
    since: datetime | None = None
    degraded: dict[str, dict[str, ComponentStatus]] = field(default_factory=dict)
    _last: dict[str, Resolution] = field(default_factory=dict, repr=False)

    def on_read(self, resolution: Resolution) -> None:
        """Note whether the database answered and what is degraded now."""
        config = resolution.config
        if resolution.database_ok is not None and resolution.database_ok != self.reachable:
            self.reachable = resolution.database_ok
            self.since = config.resolved_at
        self._last[_label(resolution)] = resolution
        self.degraded[_label(resolution)] = degraded_components(config)

    def on_resolution(self, resolution: Resolution, cache: CacheOutcome, seconds: float) -> None:
        """A config served from another process's read (machine-wide store) is news here too."""
        if cache != "miss" and self._last.get(_label(resolution)) is not resolution:
            self.on_read(resolution)

    def status(self, *, database_configured: bool, breaker: BreakerRecord) -> Status:
        """The health record as a :class:`Status`."""
        return Status(
            database_configured=database_configured,
            database_reachable=self.reachable,
            since=self.since,
            breaker=breaker.state,
            last_error=breaker.last_error,
            degraded=dict(self.degraded),
        )


class MetricsObserver:
    """Updates the package's Prometheus metrics (see :mod:`livekit_fallback.metrics`).

    Args:
        database_configured: False in snapshot mode (no read or fallback counts then).
        breaker: The breaker whose state the gauge shows, as last seen.
    """

    def __init__(self, *, database_configured: bool, breaker: Callable[[], BreakerRecord] | None) -> None:
        self._database_configured = database_configured
        self._breaker = breaker

    def on_read(self, resolution: Resolution) -> None:
        """Breaker gauge, database read counter, degraded gauges."""
        config = resolution.config
        if self._breaker is not None:
            metrics.BREAKER_STATE.set(_BREAKER_GAUGE[self._breaker().state])
        if self._database_configured:
            result = {True: "ok", False: "failed", None: "skipped"}[resolution.database_ok]
            metrics.DATABASE_READS.labels(result).inc()
        for key in config.provenance:
            metrics.set_degraded(config.vertical, config.platform, key, key in config.degraded)

    def on_resolution(self, resolution: Resolution, cache: CacheOutcome, seconds: float) -> None:
        """Resolution counter and latency; one fallback count per degraded component."""
        config = resolution.config
        outcome = "degraded" if resolution.events else "healthy"
        counter, histogram = _resolution_metrics(config.platform, outcome, cache)
        counter.inc()
        histogram.observe(seconds)
        if not self._database_configured:
            return
        for event in resolution.events:
            metrics.FALLBACKS.labels(
                event.component, config.platform, event.used_source.value, event.failure.reason.value
            ).inc()


def _label(resolution: Resolution) -> str:
    return f"{resolution.config.vertical}/{resolution.config.platform}"


_RESOLUTION_METRICS: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def _resolution_metrics(platform: str, outcome: str, cache: str) -> tuple[Any, Any]:
    """The labelled resolution counter and latency histogram, looked up once per label set.

    ``labels()`` validates and locks on every call; the warm path runs it for
    every resolution, so the children are kept (they live as long as the metric).
    """
    key = (platform, outcome, cache)
    children = _RESOLUTION_METRICS.get(key)
    if children is None:
        children = (metrics.RESOLUTIONS.labels(platform, outcome, cache), metrics.RESOLUTION_SECONDS.labels(outcome))
        _RESOLUTION_METRICS[key] = children
    return children
