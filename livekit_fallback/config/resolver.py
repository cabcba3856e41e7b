"""The resolver: reads every component from its sources, with loud fallbacks.

It wires the parts together and owns none of their jobs: one fresh read is
:func:`~livekit_fallback.config.pipeline.run_pipeline`; what is reused, who
reads the database, the breaker, incidents and the last-known-good copy are
the deployment's state (:mod:`~livekit_fallback.config.state`), kept in the
machine-wide SQLite file by default; health and metrics are
:mod:`~livekit_fallback.config.observers`.

A pickup never waits on the database when the deployment has any stored
copy: at most ``pickup_budget`` for a fresh read started in the background,
then the copy. Only a deployment with nothing stored waits up to the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence

from ..log import logger as _log
from .alarms import Alarms
from .chains import backup_chains
from .graph import DEFAULT_NODE_NAMES
from .keys import PLATFORMS
from .model import AgentConfig, Platform, Source
from .observers import CacheOutcome, HealthRecord, MetricsObserver, ResolutionObserver
from .pipeline import Backups, ConfigUnavailableError, Locations, Resolution, Skip, run_pipeline
from .seams import SnapshotCopy, SnapshotFloor
from .settings import DEFAULT_DEADLINE, DEFAULT_PICKUP_BUDGET, Settings, SettingsError
from .sources.base import ConfigSource
from .sources.last_known_good import LastKnownGoodSource
from .sources.snapshot import SnapshotError, SnapshotSource
from .sources.supabase import SupabaseSource
from .state import policy
from .state.codec import decode_resolution, encode_resolution
from .state.policy import Policy
from .state.records import SNAPSHOT_DEPLOYMENT, BreakerRecord, Plan, deployment_of
from .state.state import ResolutionState, default_storage, storage_for
from .state.storage import StateStorage
from .status import Status

__all__ = ["ConfigUnavailableError", "Resolver", "default_resolver", "resolve_agent_config"]

WAIT_POLL = 0.02
"""Seconds between looks at the state while another call reads the database for a config nobody has."""


class Resolver:
    """Resolves agent configs; create one per process and reuse it.

    ``Resolver()`` behaves as production does: its state is the machine-wide
    file in the cache directory (``LIVEKIT_FALLBACK_CACHE_DIR``), or this
    process's memory with ``LIVEKIT_FALLBACK_SHARED_STATE=0``, keyed by the
    database it reads.

    Args:
        database: The database source, or ``None`` for snapshot mode.
        snapshots: The snapshot source (the floor every component can fall back to).
        deadline: Seconds a resolution may take when nothing is stored.
        ttl: Seconds a healthy config is served without reading the database (0: never reused).
        stale_for: Seconds past the TTL a copy still counts as recent.
        cool_down: Seconds the breaker stays open before one probe read.
        failure_threshold: Consecutive failed reads that open the breaker.
        pickup_budget: Seconds a pickup with a stored copy waits for a fresh read before it is served the copy.
        configured_deadline: The deployment's own deadline when ``deadline`` is a caller's
            shorter one: a read that runs out of less time is not blamed on the database.
        repeat_interval: Seconds between counted lines of an ongoing fallback.
        state: Where the state is kept (see :mod:`~livekit_fallback.config.state`); the
            production default when ``None``.
        alarms: Writes the banners and lines the state decides on.
        observers: More observers of reads and resolutions, after health and metrics.
        clock: Wall clock the state is stamped with.
    """

    def __init__(
        self,
        *,
        database: ConfigSource | None = None,
        snapshots: SnapshotFloor | None = None,
        deadline: float = DEFAULT_DEADLINE,
        ttl: float = 5.0,
        stale_for: float = 60.0,
        cool_down: float = 5.0,
        failure_threshold: int = 3,
        pickup_budget: float = DEFAULT_PICKUP_BUDGET,
        configured_deadline: float | None = None,
        repeat_interval: float = 60.0,
        state: StateStorage | None = None,
        alarms: Alarms | None = None,
        observers: Sequence[ResolutionObserver] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        self.snapshots: SnapshotFloor = snapshots or SnapshotSource()
        self.deadline = deadline
        self.pickup_budget = pickup_budget
        self.alarms = alarms or Alarms()
        rules = Policy(
            ttl,
            stale_for,
            cool_down,
            failure_threshold,
            2 * deadline + 1.0,
            repeat_interval,
            configured_deadline or deadline,
        )
        self.state = ResolutionState(
            state if state is not None else default_storage(), _deployment(database), rules, clock=clock
        )
        self.last_known_good: LastKnownGoodSource | None = (
            LastKnownGoodSource(self.state, on_problem=self.alarms.cache_problem) if database is not None else None
        )
        self._locations = Locations(database) if database is not None else None
        self._breaker = BreakerRecord()
        self._background: set[asyncio.Task[Resolution]] = set()
        self._reading: dict[tuple[str, str], asyncio.Task[Resolution]] = {}
        self._serving: dict[tuple[str, str], asyncio.Future[tuple[Resolution, CacheOutcome]]] = {}
        self._health = HealthRecord()
        self.observers: tuple[ResolutionObserver, ...] = (
            self._health,
            MetricsObserver(database_configured=database is not None, breaker=lambda: self._breaker),
            *observers,
        )

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Resolver:
        """Build a resolver from :class:`Settings` (the environment by default)."""
        settings = settings or Settings.from_env()
        database = None
        if settings.database_configured:
            assert settings.supabase_url and settings.supabase_key
            database = SupabaseSource(settings.supabase_url, settings.supabase_key, timeout=max(settings.deadline, 1.0))
        return cls(
            database=database,
            snapshots=SnapshotSource([settings.snapshot_dir] if settings.snapshot_dir else []),
            deadline=settings.deadline,
            ttl=settings.ttl,
            cool_down=settings.cool_down,
            pickup_budget=settings.pickup_budget,
            configured_deadline=settings.configured_deadline,
            state=storage_for(settings.cache_dir, shared=settings.shared_state),
        )

    @property
    def deployment(self) -> str:
        """Whose state this resolver reads and writes: the database's URL, or ``snapshot``."""
        return self.state.deployment

    @property
    def ttl(self) -> float:
        """Seconds a resolved config is reused."""
        return self.state.policy.ttl

    @property
    def stale_for(self) -> float:
        """Seconds past the TTL a copy still counts as recent."""
        return self.state.policy.stale_for

    async def aclose(self) -> None:
        """Let reads in the background finish (up to 5 s), then release connections."""
        if self._background:
            await asyncio.wait(self._background, timeout=5.0)
        pending = list(self._background)
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
            fresh: Read the sources now (still within the deadline), whatever is stored.

        Raises:
            ValueError: ``platform`` is not ``livekit`` or ``signalwire``.
            ConfigUnavailableError: Some component is in no source at all.
        """
        if platform not in PLATFORMS:
            raise ValueError(f"platform must be one of {PLATFORMS}, got {platform!r}")
        started = time.perf_counter()
        resolution, outcome = await self._serve(vertical, platform, fresh)
        await self._report(resolution)
        for observer in self.observers:
            _notify(observer.on_resolution, resolution, outcome, time.perf_counter() - started)
        return resolution.config

    def status(self) -> Status:
        """The resolver's health, as of the latest resolutions."""
        return self._health.status(database_configured=self.database is not None, breaker=self._breaker)

    async def _serve(self, vertical: str, platform: Platform, fresh: bool) -> tuple[Resolution, CacheOutcome]:
        """The resolution to serve now, and how it was served.

        Calls of this process that arrive while another of its calls is being
        served for the same config share that one (one plan, one read); the
        machine-wide rules then run once for the burst.
        """
        key = (vertical, platform)
        if fresh:
            return await self._serve_once(vertical, platform, True)
        flight = self._serving.get(key)
        if flight is not None and not flight.done():
            resolution, _ = await asyncio.shield(flight)
            return resolution, "hit"
        flight = asyncio.ensure_future(self._serve_once(vertical, platform, False))
        self._serving[key] = flight
        flight.add_done_callback(lambda done: self._serving.pop(key, None) if self._serving.get(key) is done else None)
        return await asyncio.shield(flight)

    async def _serve_once(self, vertical: str, platform: Platform, fresh: bool) -> tuple[Resolution, CacheOutcome]:
        """One plan for this call, and what it says to serve."""
        started = time.monotonic()
        plan = await self._plan(vertical, platform, fresh)
        copy = _decoded(plan.entry.payload) if plan.entry is not None else None
        if plan.entry is not None and copy is None:
            _log.warning(
                "stored copy of %s/%s is unreadable (another version wrote it, or it is damaged); resolving afresh",
                vertical,
                platform,
                extra={"event": "store_copy_unreadable", "vertical": vertical, "platform": platform},
            )
            if plan.reads:
                await _quietly(self.state.release(vertical, platform, holder=plan.holder, probe=plan.probe))
            plan = await self._plan(vertical, platform, True)
        if copy is not None:
            if plan.cache == "hit":
                return copy, "hit"
            if plan.reads:
                read = self._in_background(self._read_and_record(vertical, platform, plan, self.deadline))
                wait = 2 * self.deadline if plan.overdue else self.pickup_budget  # overdue: the read and its client
                done, _ = await asyncio.wait({read}, timeout=wait)
                if done and not read.exception() and not read.result().stalled:
                    return read.result(), "miss"
            rules = self.state.policy
            if (age := policy.past_stale_window(plan.entry, now=self.state.clock(), policy=rules)) is not None:
                self.alarms.stale_copy(vertical, platform, age, rules.ttl + rules.stale_for)
            return copy, "stale"
        key = (vertical, platform)
        mine = self._reading.get(key)
        if mine is not None and not mine.done():  # a call of this process is reading it: share that read
            remaining = max(0.05, self.deadline - (time.monotonic() - started))
            if plan.reads:
                await _quietly(self.state.release(vertical, platform, holder=plan.holder, probe=plan.probe))
            with contextlib.suppress(asyncio.TimeoutError):
                return await asyncio.wait_for(asyncio.shield(mine), remaining), "hit"
            plan = dataclasses.replace(plan, database=False, refresh=False, probe=False)
        elif plan.cache == "wait":
            waited = await self._wait_for_other(vertical, platform, started + 0.9 * self.deadline)
            if waited is not None:
                return waited, "hit"
            plan = dataclasses.replace(plan, database=False)  # the reader is stuck: no second read, fall back now
        remaining = max(0.05, self.deadline - (time.monotonic() - started))
        read = self._in_background(self._read_and_record(vertical, platform, plan, remaining))
        self._reading[key] = read
        read.add_done_callback(lambda done: self._reading.pop(key, None) if self._reading.get(key) is done else None)
        return await asyncio.shield(read), "miss"

    async def _plan(self, vertical: str, platform: Platform, fresh: bool) -> Plan:
        plan = await self.state.plan(vertical, platform, holder=self.state.new_holder(), fresh=fresh)
        self._breaker = plan.breaker
        return plan

    def _in_background(self, work: Awaitable[Resolution]) -> asyncio.Task[Resolution]:
        """Run a read as a task of its own: returning from a resolution never cancels it."""
        task: asyncio.Task[Resolution] = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_retrieve)
        return task

    async def _read_and_record(self, vertical: str, platform: Platform, plan: Plan, deadline: float) -> Resolution:
        """One fresh read under the plan, recorded in the state (config, verdict, leases, copy)."""
        try:
            resolution = await self._read(vertical, platform, plan, deadline)
            excuse = policy.excused(
                resolution.verdict, allowed=deadline, policy=self.state.policy
            ) or policy.left_to_another(plan)
            if excuse is not None:
                resolution = dataclasses.replace(resolution, verdict=None, stalled=True, excuse=excuse)
        except BaseException:
            await _quietly(self.state.release(vertical, platform, holder=plan.holder, probe=plan.probe))
            raise
        try:
            self._breaker = await self.state.finish(
                vertical,
                platform,
                holder=plan.holder,
                payload=None if resolution.stalled else encode_resolution(resolution),
                degraded=bool(resolution.events),
                verdict=resolution.verdict if plan.database else None,
                probe=plan.probe,
            )
            if self.last_known_good is not None and resolution.database_ok and not resolution.stalled:
                await self.last_known_good.store(resolution.config)
        except Exception:
            _log.exception("recording the resolution of %s/%s failed", vertical, platform)
        return resolution

    async def _read(self, vertical: str, platform: Platform, plan: Plan, deadline: float) -> Resolution:
        """One fresh resolution from the sources, within ``deadline`` seconds."""
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
            deadline_seconds=deadline,
            skip=None if plan.database else Skip(_skipped(plan.breaker)),
            snapshot_taken_at=snapshot.taken_at if snapshot else None,
            locations=self._locations,
        )
        ranked = getattr(self.database, "ranked_backups", None)
        if resolution.database_ok and callable(ranked) and ranked(platform):
            database_backups: Backups | None = ranked(platform)
        elif not resolution.database_ok and self.last_known_good is not None:
            database_backups = await self.last_known_good.backups(vertical, platform)
        else:
            database_backups = None
        backups = backup_chains(snapshot, vertical, platform, database_backups)
        resolution = dataclasses.replace(resolution, config=resolution.config.model_copy(update={"backups": backups}))
        for observer in self.observers:
            _notify(observer.on_read, resolution)
        return resolution

    async def _wait_for_other(self, vertical: str, platform: Platform, until: float) -> Resolution | None:
        """Wait until another call's read lands (or ``until`` passes).

        A read of this process is awaited directly (it may have started just
        after this call planned); another process's is looked for in the state.
        """
        while time.monotonic() < until:
            mine = self._reading.get((vertical, platform))
            if mine is not None and not mine.done():
                with contextlib.suppress(asyncio.TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(mine), max(0.0, until - time.monotonic()))
                return None
            await asyncio.sleep(WAIT_POLL)
            entry = await self.state.config(vertical, platform)
            if entry is not None:
                return _decoded(entry.payload)
        return None

    async def _report(self, resolution: Resolution) -> None:
        """Alarms: snapshot mode once; a stall once per stall; fallbacks as the state decides."""
        config = resolution.config
        if self.database is None:
            snap = next((e.used for e in resolution.events if e.used_source is Source.SNAPSHOT), None)
            date = snap.taken_at.date().isoformat() if snap and snap.taken_at else "unknown date"
            self.alarms.snapshot_mode(config.vertical, config.platform, f"snapshot taken {date}")
            return
        if resolution.stalled:
            _log.warning(
                "RESOLUTION STALLED: %s while %s/%s was read, so %d component(s) were served from fallbacks "
                "for this call. The database is not blamed (no banner, breaker unchanged). Action: look for "
                "blocking work in the agent process, or give the caller the deployment's deadline.",
                resolution.excuse or "the read did not get its time",
                config.vertical,
                config.platform,
                len(resolution.events),
                extra={
                    "event": "resolution_stalled",
                    "vertical": config.vertical,
                    "platform": config.platform,
                    "excuse": resolution.excuse,
                },
            )
            return
        events = [(e.component, e.failure.reason.value) for e in resolution.events]
        try:
            decisions, recovery = await self.state.account(config.vertical, config.platform, events, resolution.healthy)
        except Exception:
            _log.exception("alarm accounting failed")
            return
        self.alarms.report(config.vertical, config.platform, resolution.events, decisions, recovery)


def _deployment(database: ConfigSource | None) -> str:
    """The database's identity (its URL, never its key); ``snapshot`` without one."""
    if database is None:
        return SNAPSHOT_DEPLOYMENT
    url = getattr(database, "url", None)
    return deployment_of(url) if isinstance(url, str) and url else f"source:{type(database).__qualname__}"


def _skipped(breaker: BreakerRecord) -> str:
    if breaker.state == "closed":
        return "database skipped: another call on this machine is reading it"
    return (
        f"database skipped: circuit breaker open on this machine after {breaker.failures} consecutive "
        f"failure(s); last error: {breaker.last_error}"
    )


def _decoded(payload: str) -> Resolution | None:
    try:
        return decode_resolution(payload)
    except (ValueError, KeyError, TypeError):
        return None  # written by another version or damaged: resolve afresh


def _retrieve(task: asyncio.Task[Resolution]) -> None:
    """Mark a finished read's exception as seen: a caller that stopped waiting is not told twice."""
    if not task.cancelled():
        task.exception()


async def _quietly(operation: Awaitable[None]) -> None:
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.shield(operation)


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
