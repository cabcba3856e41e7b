"""The resolver: cached, single-flight, breaker-guarded resolution with loud fallbacks.

Within one process a resolved config is reused for ``ttl`` seconds.
Concurrent resolutions of the same vertical and platform share one database
read. A healthy entry past its TTL is returned at once while one background
refresh runs (stale-while-revalidate). A degraded entry is never sticky: the
next call reads the database again unless the circuit breaker says it is down,
so a recovered database is used by the very next resolution.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import metrics
from ..log import logger as _log
from .alarms import Alarms
from .breaker import BreakerState, CircuitBreaker
from .graph import DEFAULT_NODE_NAMES
from .model import AgentConfig, Platform, Source
from .pipeline import ConfigUnavailableError, Resolution, run_pipeline
from .settings import Settings, SettingsError
from .sources.base import ConfigSource
from .sources.last_known_good import LastKnownGoodCache
from .sources.snapshot import SnapshotError, SnapshotSource
from .sources.supabase import SupabaseSource
from .status import ComponentStatus, Status, degraded_components

__all__ = ["ConfigUnavailableError", "Resolver", "default_resolver", "resolve_agent_config"]

PLATFORMS: tuple[Platform, ...] = ("livekit", "signalwire")
_BREAKER_GAUGE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


@dataclass
class _Entry:
    resolution: Resolution
    stored_at: float


@dataclass
class _Health:
    reachable: bool | None = None
    since: datetime | None = None
    degraded: dict[str, dict[str, ComponentStatus]] = field(default_factory=dict)


class Resolver:
    """Resolves agent configs; create one per process and reuse it.

    Args:
        database: The database source, or ``None`` for snapshot mode.
        snapshots: The snapshot source (the floor every component can fall back to).
        last_known_good: The on-disk last-known-good cache, or ``None`` for none.
        deadline: Seconds a fresh resolution may take in total.
        ttl: Seconds a resolved config is reused in-process (0 disables reuse).
        stale_for: Seconds past the TTL a healthy config may still be returned at
            once while a background refresh runs; older entries are read again first.
        breaker: The database circuit breaker (a default one when a database is set).
        alarms: Where fallbacks are reported.
    """

    def __init__(
        self,
        *,
        database: ConfigSource | None = None,
        snapshots: SnapshotSource | None = None,
        last_known_good: LastKnownGoodCache | None = None,
        deadline: float = 1.0,
        ttl: float = 5.0,
        stale_for: float = 60.0,
        breaker: CircuitBreaker | None = None,
        alarms: Alarms | None = None,
    ) -> None:
        self.database = database
        self.snapshots = snapshots or SnapshotSource()
        self.last_known_good = last_known_good
        self.deadline = deadline
        self.ttl = ttl
        self.stale_for = stale_for
        self.breaker = breaker if breaker is not None else (CircuitBreaker() if database is not None else None)
        self.alarms = alarms or Alarms()
        if last_known_good is not None and last_known_good.on_problem is None:
            last_known_good.on_problem = self.alarms.cache_problem
        self._cache: dict[tuple[str, str], _Entry] = {}
        self._inflight: dict[tuple[str, str], asyncio.Task[Resolution]] = {}
        self._background: set[asyncio.Task[object]] = set()
        self._health = _Health()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Resolver:
        """Build a resolver from :class:`Settings` (the environment by default)."""
        settings = settings or Settings.from_env()
        database = lkg = None
        if settings.database_configured:
            assert settings.supabase_url and settings.supabase_key
            database = SupabaseSource(settings.supabase_url, settings.supabase_key, timeout=max(settings.deadline, 1.0))
            lkg = LastKnownGoodCache(settings.cache_dir)
        dirs = [settings.snapshot_dir] if settings.snapshot_dir else []
        return cls(
            database=database,
            snapshots=SnapshotSource(dirs),
            last_known_good=lkg,
            deadline=settings.deadline,
            ttl=settings.ttl,
        )

    async def aclose(self) -> None:
        """Finish pending cache writes, stop refreshes and release connections."""
        if self._background:
            await asyncio.wait(self._background, timeout=5.0)
        pending = (*self._background, *self._inflight.values())
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        close = getattr(self.database, "aclose", None)
        if close is not None:
            await close()

    async def __aenter__(self) -> Resolver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def resolve(self, vertical: str, platform: Platform = "livekit", *, fresh: bool = False) -> AgentConfig:
        """Return a complete, valid config, within the deadline.

        Never raises for a database problem: failed components come from the
        next source and are logged as fallbacks.

        Args:
            vertical: The business vertical, e.g. ``reverse_mortgage``.
            platform: ``livekit`` or ``signalwire``.
            fresh: Skip the in-process cache and read the sources now.

        Raises:
            ValueError: ``platform`` is not ``livekit`` or ``signalwire``.
            ConfigUnavailableError: Some component is in no source at all.
        """
        if platform not in PLATFORMS:
            raise ValueError(f"platform must be one of {PLATFORMS}, got {platform!r}")
        started = time.perf_counter()
        key = (vertical, platform)
        entry = self._cache.get(key)
        cache = "miss"
        if entry is not None and not fresh:
            age = time.monotonic() - entry.stored_at
            if entry.resolution.events:
                if self.breaker is not None and self.breaker.cooling_down:
                    cache = "hit"
            elif age < self.ttl:
                cache = "hit"
            elif self.ttl > 0 and age < self.ttl + self.stale_for:
                cache = "stale"
                self._refresh_in_background(key)
        resolution = entry.resolution if entry is not None and cache != "miss" else await self._shared_flight(key)
        self._observe(resolution, cache, time.perf_counter() - started)
        return resolution.config

    def status(self) -> Status:
        """The resolver's health, as of the latest resolutions."""
        breaker = self.breaker
        return Status(
            database_configured=self.database is not None,
            database_reachable=self._health.reachable,
            since=self._health.since,
            breaker=breaker.state.value if breaker else BreakerState.CLOSED.value,
            last_error=breaker.last_error if breaker else None,
            degraded=dict(self._health.degraded),
        )

    async def _shared_flight(self, key: tuple[str, str]) -> Resolution:
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._resolve_fresh(*key))  # type: ignore[arg-type]
            self._inflight[key] = task
            task.add_done_callback(lambda t, k=key: self._inflight.pop(k, None) if self._inflight.get(k) is t else None)
        return await asyncio.shield(task)

    def _refresh_in_background(self, key: tuple[str, str]) -> None:
        if key in self._inflight:
            return

        async def refresh() -> None:
            try:
                await self._shared_flight(key)
            except Exception:
                _log.exception("background refresh of %s/%s failed", *key)

        self._track(refresh())

    def _track(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _resolve_fresh(self, vertical: str, platform: Platform) -> Resolution:
        local = (self.last_known_good, self.snapshots) if self.last_known_good is not None else (self.snapshots,)
        try:
            snapshot = self.snapshots.snapshot(vertical)
        except SnapshotError:
            snapshot = None  # the database alone may still supply everything
        resolution = await run_pipeline(
            vertical=vertical,
            platform=platform,
            node_names=snapshot.node_names if snapshot else DEFAULT_NODE_NAMES,
            database=self.database,
            local_sources=local,
            breaker=self.breaker,
            deadline_seconds=self.deadline,
            snapshot_taken_at=snapshot.taken_at if snapshot else None,
        )
        self._cache[(vertical, platform)] = _Entry(resolution, time.monotonic())
        self._after_fresh(resolution)
        return resolution

    def _after_fresh(self, resolution: Resolution) -> None:
        config = resolution.config
        if resolution.database_ok is not None and resolution.database_ok != self._health.reachable:
            self._health.reachable = resolution.database_ok
            self._health.since = config.resolved_at
        if self.breaker is not None:
            metrics.BREAKER_STATE.set(_BREAKER_GAUGE[self.breaker.state])
        if self.database is not None:
            result = {True: "ok", False: "failed", None: "skipped"}[resolution.database_ok]
            metrics.DATABASE_READS.labels(result).inc()
        label = f"{config.vertical}/{config.platform}"
        self._health.degraded[label] = degraded_components(config)
        for key in config.provenance:
            metrics.DEGRADED.labels(config.vertical, config.platform, key).set(1 if key in config.degraded else 0)
        if self.last_known_good is not None and resolution.database_ok:
            self._track(self._store(config))

    async def _store(self, config: AgentConfig) -> None:
        assert self.last_known_good is not None
        try:
            await self.last_known_good.store(config)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__  # stable text: no temp-file names
            self.alarms.cache_problem(
                str(self.last_known_good.directory), f"cannot write last-known-good copy: {reason}"
            )

    def _observe(self, resolution: Resolution, cache: str, elapsed: float) -> None:
        config = resolution.config
        outcome = "degraded" if resolution.events else "healthy"
        counter, seconds = _resolution_metrics(config.platform, outcome, cache)
        counter.inc()
        seconds.observe(elapsed)
        if self.database is None:
            snap = next((e.used for e in resolution.events if e.used_source is Source.SNAPSHOT), None)
            date = snap.taken_at.date().isoformat() if snap and snap.taken_at else "unknown date"
            self.alarms.snapshot_mode(config.vertical, config.platform, f"snapshot taken {date}")
            return
        for event in resolution.events:
            metrics.FALLBACKS.labels(
                event.component, config.platform, event.used_source.value, event.failure.reason.value
            ).inc()
        self.alarms.resolution(config.vertical, config.platform, resolution.events, resolution.healthy)


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


_default_resolvers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Resolver] = weakref.WeakKeyDictionary()


def default_resolver() -> Resolver:
    """The process's shared resolver for the running event loop, built from the environment.

    HTTP connection pools belong to one event loop, so each loop gets its own.
    """
    loop = asyncio.get_running_loop()
    resolver = _default_resolvers.get(loop)
    if resolver is None:
        try:
            resolver = Resolver.from_settings()
        except SettingsError as exc:
            # A typo in an environment variable must not stop calls being answered.
            _log.error(
                "INVALID SETTINGS: %s. Serving every call from the snapshots (no database) until fixed.",
                exc,
                extra={"event": "invalid_settings", "reason": str(exc)},
            )
            resolver = Resolver()
        _default_resolvers[loop] = resolver
    return resolver


async def resolve_agent_config(
    vertical: str, platform: Platform = "livekit", *, resolver: Resolver | None = None, fresh: bool = False
) -> AgentConfig:
    """Resolve an agent's configuration with per-component fallback.

    The one call an agent needs at call pickup. Uses the shared
    :func:`default_resolver` (configured from ``SUPABASE_URL`` /
    ``SUPABASE_SERVICE_KEY``) unless a resolver is given.

    Args:
        vertical: The business vertical, e.g. ``reverse_mortgage``.
        platform: ``livekit`` or ``signalwire``.
        resolver: A specific resolver to use.
        fresh: Bypass the in-process cache.
    """
    return await (resolver or default_resolver()).resolve(vertical, platform, fresh=fresh)
