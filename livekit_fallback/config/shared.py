"""Resolution through the machine-wide store: one wait, one read, one alarm per machine.

The in-process path (:class:`~livekit_fallback.config.cache.ResolutionCache`,
an in-process breaker, :class:`~livekit_fallback.config.alarms.Alarms`) only
helps calls that share a process, and LiveKit runs every call in its own. Here
the same policy is decided by :class:`~livekit_fallback.config.store.MachineStore`
for every process of the machine:

- a config another process resolved within the TTL is served with no database
  request; past the TTL one process refreshes it while the others serve the
  stale copy; when nothing is stored, one process reads and the others wait
  for its result (up to the deadline);
- the breaker is the machine's: a process started during an outage sees it
  open and does not touch the database, and one probe per cool-down runs
  machine-wide;
- the full banner is logged once per component per incident per machine, then
  one counted line per interval, and one recovery line.

Whenever the store cannot be used, :class:`StoreUnavailable` propagates to the
resolver, which falls back to its in-process path for that resolution.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from ..errors import StoreUnavailable
from ..log import logger
from .alarms import Alarms, FallbackEvent, same_problem
from .breaker import BreakerState, CircuitBreaker
from .cache import CacheOutcome
from .keys import ComponentKey, Platform
from .model import AgentConfig, Reason, Source
from .pipeline import Resolution
from .sources.base import Failure, Found
from .store import BreakerRecord, MachineStore, Plan, StoredConfig

__all__ = ["PlannedBreaker", "SharedResolutions", "decode_resolution", "encode_resolution"]

WAIT_POLL = 0.02
"""Seconds between looks at the store while another process reads the database."""

Reader = Callable[[str, Platform, "PlannedBreaker", float], Awaitable[Resolution]]
"""Reads the sources for a vertical and platform under a breaker, within a deadline."""


def encode_resolution(resolution: Resolution) -> str:
    """A resolution as JSON for the store: the config and the facts its alarms need."""
    events = [
        {
            "component": e.component,
            "reason": e.failure.reason.value,
            "detail": e.failure.detail,
            "location": e.failure.location,
            "used_source": e.used_source.value,
            "used_taken_at": e.used.taken_at.isoformat() if e.used.taken_at else None,
            "used_location": e.used.location,
            "now": e.now.isoformat(),
        }
        for e in resolution.events
    ]
    return json.dumps(
        {
            "config": resolution.config.model_dump_json(),
            "events": events,
            "database_ok": resolution.database_ok,
            "healthy": list(resolution.healthy),
        },
        separators=(",", ":"),
    )


def decode_resolution(payload: str) -> Resolution:
    """A resolution as :func:`encode_resolution` stored it.

    Raises:
        ValueError: The payload is not a stored resolution (the caller resolves afresh).
    """
    data = json.loads(payload)
    config = AgentConfig.model_validate_json(data["config"])
    events = tuple(
        FallbackEvent(
            e["component"],
            config.vertical,
            config.platform,
            Failure(Reason(e["reason"]), e["detail"], e["location"]),
            Found(_component(config, e["component"]), _time(e["used_taken_at"]), e["used_location"]),
            Source(e["used_source"]),
            datetime.fromisoformat(e["now"]),
        )
        for e in data["events"]
    )
    return Resolution(config, events, data["database_ok"], tuple(data["healthy"]))


def _component(config: AgentConfig, key: str) -> Any:
    component = ComponentKey.parse(key)
    if component.kind == "theme":
        return config.theme
    if component.kind == "node":
        return config.nodes[component.name]
    return getattr(config.models, component.model_kind)


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class PlannedBreaker:
    """The machine's breaker decision for one resolution, in the shape the pipeline asks for.

    ``allow()`` answers what the store decided; the verdict the pipeline
    records is kept for :meth:`MachineStore.finish`.

    Args:
        plan: The store's decision.
        cool_down: The breaker's cool-down (for the open breaker's description).
    """

    def __init__(self, plan: Plan, cool_down: float) -> None:
        self.plan = plan
        self.cool_down = cool_down
        self.verdict: tuple[bool, str | None, bool] | None = None

    @property
    def state(self) -> BreakerState:
        """The machine's breaker state when the plan was made."""
        return BreakerState(self.plan.breaker.state)

    @property
    def cooling_down(self) -> bool:
        """Whether the database is skipped for this resolution."""
        return not self.plan.database

    @property
    def last_error(self) -> str | None:
        """The machine's latest database error."""
        return self.plan.breaker.last_error

    def allow(self) -> bool:
        """Whether this resolution may read the database."""
        return self.plan.database

    def record_success(self) -> None:
        """The database answered."""
        self.verdict = (True, None, False)

    def record_failure(self, error: str, *, timed_out: bool = False) -> None:
        """The database failed at the connection or server level."""
        self.verdict = (False, error, timed_out)

    def release_probe(self) -> None:
        """The read was cancelled; the store's lease is released by the caller."""

    def describe(self) -> str:
        """The open breaker as a fallback reason."""
        record = self.plan.breaker
        if record.state == "closed":
            return "database skipped: another process on this machine is reading it"
        return (
            f"database skipped: circuit breaker open on this machine after {record.failures} consecutive "
            f"failure(s); last error: {record.last_error}"
        )


@dataclass
class SharedResolutions:
    """The machine-wide cache, single flight, breaker and alarm dedup for one resolver.

    Args:
        store: The machine's store.
        ttl: Seconds a resolved config is served without reading the database.
        stale_for: Seconds past the TTL a healthy config is served while one process refreshes it.
        deadline: Seconds a resolution may take in total (waits included).
        breaker: The resolver's in-process breaker: its settings are the
            machine's, and it mirrors the machine's state (for status and
            metrics, and as the fallback when the store cannot be used).
    """

    store: MachineStore
    ttl: float
    stale_for: float
    deadline: float
    breaker: CircuitBreaker

    async def get(
        self, vertical: str, platform: Platform, read: Reader, track: Callable[[Awaitable[None]], None], fresh: bool
    ) -> tuple[Resolution, CacheOutcome]:
        """Serve a resolution as the machine's state says.

        Raises:
            StoreUnavailable: The store cannot be used now.
        """
        started = time.monotonic()
        plan = await self._begin(vertical, platform, fresh)
        if plan.cache in ("hit", "stale") and plan.entry is not None:
            resolution = _decoded(plan.entry)
            if resolution is not None:
                if plan.refresh:
                    track(self._refresh(vertical, platform, plan, read))
                return resolution, "hit" if plan.cache == "hit" else "stale"
            # A copy this version cannot read (another version wrote it, or it is damaged): resolve afresh.
            logger.warning(
                "machine-wide copy of %s/%s is unreadable; resolving afresh",
                vertical,
                platform,
                extra={"event": "store_copy_unreadable", "vertical": vertical, "platform": platform},
            )
            if plan.refresh or plan.probe:
                await _quietly(self.store.release(vertical, platform, probe=plan.probe, holder=plan.holder))
            plan = await self._begin(vertical, platform, True)
        if plan.cache == "wait":
            entry = await self._wait_for_other(vertical, platform, plan.entry, started + 0.9 * self.deadline)
            resolution = _decoded(entry) if entry is not None else None
            if resolution is not None:
                return resolution, "hit"
            plan = replace(plan, database=False)  # the reader is stuck: no second read, fall back now
        remaining = max(0.05, self.deadline - (time.monotonic() - started))
        return await self._read(vertical, platform, plan, read, remaining), "miss"

    async def _begin(self, vertical: str, platform: Platform, fresh: bool) -> Plan:
        plan = await self.store.begin(
            vertical,
            platform,
            ttl=self.ttl,
            stale_for=self.stale_for,
            cool_down=self.breaker.cool_down,
            lease_for=2 * self.deadline + 1.0,
            fresh=fresh,
        )
        self._mirror(plan.breaker)
        return plan

    async def _refresh(self, vertical: str, platform: Platform, plan: Plan, read: Reader) -> None:
        try:
            await self._read(vertical, platform, plan, read, self.deadline)
        except Exception:
            logger.exception("background refresh of %s/%s failed", vertical, platform)

    async def _read(self, vertical: str, platform: Platform, plan: Plan, read: Reader, deadline: float) -> Resolution:
        breaker = PlannedBreaker(plan, self.breaker.cool_down)
        try:
            resolution = await read(vertical, platform, breaker, deadline)
        except BaseException:
            if plan.refresh or plan.probe:
                await _quietly(self.store.release(vertical, platform, probe=plan.probe, holder=plan.holder))
            raise
        database_ok, error, timed_out = breaker.verdict or (None, None, False)
        try:
            record = await self.store.finish(
                vertical,
                platform,
                payload=encode_resolution(resolution),
                degraded=bool(resolution.events),
                database_ok=database_ok,
                error=error,
                timed_out=timed_out,
                failure_threshold=self.breaker.failure_threshold,
                probe=plan.probe,
                holder=plan.holder,
            )
        except StoreUnavailable:
            if database_ok is True:
                self.breaker.record_success()
            elif database_ok is False:
                self.breaker.record_failure(error or "database failed", timed_out=timed_out)
        else:
            self._mirror(record)
        return resolution

    async def _wait_for_other(
        self, vertical: str, platform: Platform, before: StoredConfig | None, until: float
    ) -> StoredConfig | None:
        """Poll the store until another process's read lands (or ``until`` passes)."""
        seen = before.read_at if before is not None else None
        while time.monotonic() < until:
            await asyncio.sleep(WAIT_POLL)
            entry = await self.store.read_config(vertical, platform)
            if entry is not None and entry.read_at != seen:
                return entry
        return None

    async def report(self, resolution: Resolution, alarms: Alarms) -> None:
        """Log what the machine has not logged yet about this resolution.

        Raises:
            StoreUnavailable: The store cannot be used now (the caller reports in-process).
        """
        config = resolution.config
        events = resolution.events
        decisions, recovery = await self.store.alarms(
            config.vertical,
            config.platform,
            [(e.component, e.failure.reason.value) for e in events],
            resolution.healthy,
            repeat_interval=alarms.repeat_interval,
            same_problem=lambda before, now: same_problem(Reason(before), Reason(now)),
        )
        traced: set[int] = set()
        for event, decision in zip(events, decisions, strict=True):
            started = datetime.fromtimestamp(decision.started_at, timezone.utc)
            if decision.action == "banner":
                alarms.log_banner(event, traced)
            elif decision.action == "repeat":
                alarms.log_repeat(event, decision.since_line, decision.interval, decision.total, started)
        if recovery is not None:
            started = datetime.fromtimestamp(recovery.started_at, timezone.utc)
            alarms.log_recovery(config.vertical, config.platform, recovery.seconds, recovery.resolutions, started)

    def _mirror(self, record: BreakerRecord) -> None:
        """Copy the machine's breaker into the in-process one (status, metrics, fallback path)."""
        breaker = self.breaker
        breaker.state = BreakerState(record.state)
        breaker.consecutive_failures = record.failures
        breaker.last_error = record.last_error
        if record.opened_at is None:
            breaker.opened_at = None
        else:
            breaker.opened_at = breaker.clock() - max(0.0, self.store.clock() - record.opened_at)


def _decoded(entry: StoredConfig) -> Resolution | None:
    try:
        return decode_resolution(entry.payload)
    except (ValueError, KeyError, TypeError):
        return None  # written by another version or damaged: resolve afresh


async def _quietly(operation: Awaitable[None]) -> None:
    with contextlib.suppress(StoreUnavailable, asyncio.CancelledError):
        await asyncio.shield(operation)
