"""The resolver: reads every component from its sources, with loud fallbacks.

It wires the parts together and owns none of their jobs: one fresh read is
:func:`~livekit_fallback.config.pipeline.run_pipeline`; reuse (TTL, single
flight, stale-while-revalidate) is :class:`~livekit_fallback.config.cache.ResolutionCache`;
health, metrics and alarms are :mod:`~livekit_fallback.config.observers`. The
sources, the cache store, the breaker and the alarms are protocols, so each
can be replaced (for example by stores shared by every process of a machine)
without touching this module.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Sequence

from ..errors import StoreUnavailable
from ..log import logger as _log
from .alarms import Alarms, AlarmSink
from .breaker import Breaker, CircuitBreaker
from .cache import CacheOutcome, CacheStore, ResolutionCache
from .graph import DEFAULT_NODE_NAMES
from .keys import MODEL_KINDS, PLATFORMS, ComponentKey, ModelKind
from .model import AgentConfig, ModelChoice, Platform, Provenance, Source
from .observers import AlarmDispatch, HealthRecord, MetricsObserver, ResolutionObserver
from .pipeline import Backups, ConfigUnavailableError, Locations, Resolution, run_pipeline
from .seams import LastKnownGoodStore, SnapshotCopy, SnapshotFloor
from .settings import Settings, SettingsError
from .shared import SharedResolutions
from .sources.base import ConfigSource
from .sources.last_known_good import LastKnownGoodCache
from .sources.shared_last_known_good import SharedLastKnownGood
from .sources.snapshot import SnapshotError, SnapshotSource
from .sources.supabase import SupabaseSource
from .status import Status
from .store import MachineStore

__all__ = ["ConfigUnavailableError", "Resolver", "default_resolver", "resolve_agent_config"]


class Resolver:
    """Resolves agent configs; create one per process and reuse it.

    Args:
        database: The database source, or ``None`` for snapshot mode.
        snapshots: The snapshot source (the floor every component can fall back to).
        last_known_good: The last-known-good copy, or ``None`` for none.
        deadline: Seconds a fresh resolution may take in total.
        ttl: Seconds a resolved config is reused (0 disables reuse).
        stale_for: Seconds past the TTL a healthy config may still be returned at
            once while a background refresh runs; older entries are read again first.
        breaker: The database circuit breaker (a default one when a database is set).
        alarms: Where fallbacks are reported.
        cache: Where resolved configs are kept (in this process by default).
        observers: More observers of reads and resolutions, after the built-in
            health record, metrics and alarms.
        clock: The clock cache entries are stamped with (monotonic by default).
        shared: The machine-wide store (see :mod:`~livekit_fallback.config.store`):
            cache, breaker and alarm dedup shared with every process of the
            machine; ``None`` keeps them in this process. Needs a database and
            the default :class:`CircuitBreaker`.
    """

    def __init__(
        self,
        *,
        database: ConfigSource | None = None,
        snapshots: SnapshotFloor | None = None,
        last_known_good: LastKnownGoodStore | None = None,
        deadline: float = 1.0,
        ttl: float = 5.0,
        stale_for: float = 60.0,
        breaker: Breaker | None = None,
        alarms: AlarmSink | None = None,
        cache: CacheStore | None = None,
        observers: Sequence[ResolutionObserver] = (),
        clock: Callable[[], float] = time.monotonic,
        shared: MachineStore | None = None,
    ) -> None:
        self.database = database
        self.snapshots: SnapshotFloor = snapshots or SnapshotSource()
        self.last_known_good = last_known_good
        self.deadline = deadline
        self.breaker: Breaker | None = (
            breaker if breaker is not None else (CircuitBreaker() if database is not None else None)
        )
        self.alarms: AlarmSink = alarms or Alarms()
        if last_known_good is not None and last_known_good.on_problem is None:
            last_known_good.on_problem = self.alarms.cache_problem
        self._locations = Locations(database) if database is not None else None
        self._cache = ResolutionCache(
            self._read, ttl=ttl, stale_for=stale_for, store=cache, keep_degraded=self._cooling_down, clock=clock
        )
        self._health = HealthRecord()
        configured = database is not None
        self._dispatch = AlarmDispatch(self.alarms, database_configured=configured)
        self.observers: tuple[ResolutionObserver, ...] = (
            self._health,
            MetricsObserver(database_configured=configured, breaker=self.breaker),
            *observers,
        )
        self.shared: SharedResolutions | None = None
        if shared is not None and database is not None:
            if not isinstance(self.breaker, CircuitBreaker) or not isinstance(self.alarms, Alarms):
                raise ValueError("a machine-wide store needs the default CircuitBreaker and Alarms")
            self.shared = SharedResolutions(shared, ttl, stale_for, deadline, self.breaker)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Resolver:
        """Build a resolver from :class:`Settings` (the environment by default)."""
        settings = settings or Settings.from_env()
        database = store = None
        lkg: LastKnownGoodStore | None = None
        if settings.database_configured:
            assert settings.supabase_url and settings.supabase_key
            database = SupabaseSource(settings.supabase_url, settings.supabase_key, timeout=max(settings.deadline, 1.0))
            files = LastKnownGoodCache(settings.cache_dir)
            if settings.shared_state:
                store = MachineStore.for_directory(files.directory)
                lkg = SharedLastKnownGood(store, legacy=files)
            else:
                lkg = files
        dirs = [settings.snapshot_dir] if settings.snapshot_dir else []
        return cls(
            database=database,
            snapshots=SnapshotSource(dirs),
            last_known_good=lkg,
            deadline=settings.deadline,
            ttl=settings.ttl,
            shared=store,
            breaker=CircuitBreaker(cool_down=settings.cool_down) if database is not None else None,
        )

    @property
    def ttl(self) -> float:
        """Seconds a resolved config is reused."""
        return self._cache.ttl

    @property
    def stale_for(self) -> float:
        """Seconds past the TTL a healthy config is served while it is refreshed."""
        return self._cache.stale_for

    async def aclose(self) -> None:
        """Finish pending cache writes, stop refreshes and release connections."""
        await self._cache.aclose()
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
            fresh: Skip the cache and read the sources now.

        Raises:
            ValueError: ``platform`` is not ``livekit`` or ``signalwire``.
            ConfigUnavailableError: Some component is in no source at all.
        """
        if platform not in PLATFORMS:
            raise ValueError(f"platform must be one of {PLATFORMS}, got {platform!r}")
        started = time.perf_counter()
        shared = self.shared
        if shared is not None and shared.store.usable:
            try:
                resolution, cache = await shared.get(vertical, platform, self._read, self._cache.track, fresh)
            except StoreUnavailable:
                shared = None
        else:
            shared = None
        if shared is None:
            resolution, cache = await self._cache.get((vertical, platform), fresh=fresh)
        await self._report(resolution, shared)
        self._served(resolution, cache, time.perf_counter() - started)
        return resolution.config

    def status(self) -> Status:
        """The resolver's health, as of the latest resolutions."""
        return self._health.status(database_configured=self.database is not None, breaker=self.breaker)

    async def _report(self, resolution: Resolution, shared: SharedResolutions | None) -> None:
        """Alarms: machine-wide through the store when it is in use, else in this process."""
        if shared is not None and isinstance(self.alarms, Alarms):
            try:
                await shared.report(resolution, self.alarms)
                return
            except StoreUnavailable:
                pass
            except Exception:
                _log.exception("machine-wide alarm accounting failed")
        _notify(self._dispatch.on_resolution, resolution, "miss", 0.0)

    def _cooling_down(self) -> bool:
        return self.breaker is not None and self.breaker.cooling_down

    async def _read(
        self, vertical: str, platform: Platform, breaker: Breaker | None = None, deadline: float | None = None
    ) -> Resolution:
        """One fresh resolution; the cache calls it (once per vertical and platform at a time).

        Args:
            vertical: The vertical.
            platform: The platform.
            breaker: The breaker to consult (the machine's decision in shared mode).
            deadline: Seconds this read may take (the resolver's deadline by default).
        """
        local: tuple[ConfigSource, ...] = (
            (self.last_known_good, self.snapshots) if self.last_known_good is not None else (self.snapshots,)
        )
        snapshot: SnapshotCopy | None
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
            breaker=breaker if breaker is not None else self.breaker,
            deadline_seconds=deadline if deadline is not None else self.deadline,
            snapshot_taken_at=snapshot.taken_at if snapshot else None,
            locations=self._locations,
            backups=_backups(snapshot, vertical, platform) if snapshot else None,
        )
        for observer in self.observers:
            _notify(observer.on_read, resolution)
        if self.last_known_good is not None and resolution.database_ok:
            self._cache.track(self._store(self.last_known_good, resolution.config))
        return resolution

    def _served(self, resolution: Resolution, cache: CacheOutcome, seconds: float) -> None:
        for observer in self.observers:
            _notify(observer.on_resolution, resolution, cache, seconds)

    async def _store(self, last_known_good: LastKnownGoodStore, config: AgentConfig) -> None:
        try:
            await last_known_good.store(config)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__  # stable text: no temp-file names
            self.alarms.cache_problem(str(last_known_good.directory), f"cannot write last-known-good copy: {reason}")


def _backups(snapshot: SnapshotCopy, vertical: str, platform: Platform) -> Backups:
    """The snapshot's model choices for the platform, as the config's backups."""
    origin = Provenance(source=Source.SNAPSHOT, taken_at=snapshot.taken_at, location=snapshot.path)
    backups: dict[ModelKind, tuple[tuple[ModelChoice, Provenance], ...]] = {}
    for kind in MODEL_KINDS:
        try:
            choice = snapshot.component(str(ComponentKey.model(kind)), platform)
        except ValueError as exc:  # an invalid model in the file: no backup for that kind
            _log.warning("No snapshot %s model for %s to fall back to: %s", kind.upper(), vertical, exc)
            continue
        if isinstance(choice, ModelChoice):
            backups[kind] = ((choice, origin),)
    return backups


def _notify(call: Callable[..., None], *args: object) -> None:
    """Call an observer; a failing observer is logged, never allowed to fail a call."""
    try:
        call(*args)
    except Exception:
        _log.exception("resolution observer %r failed", call)


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
