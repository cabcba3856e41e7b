"""The whole machine's view, read from the machine-wide store: what every process sees right now.

A LiveKit host runs every call in its own process and serves no HTTP of its
own, so "what state are my calls in" cannot be asked of one process. The
store (:mod:`~livekit_fallback.config.store`) holds what every process
resolved, the machine's breaker, the open incidents and outages and the
last-known-good copy; :func:`read_machine_status` reads all of it in one
read-only transaction, for the status page and ``livekit-fallback status
--machine``. Nothing here writes to the store or touches the database.

The stored payload is :func:`~livekit_fallback.config.shared.encode_resolution`'s
JSON, read with :func:`~livekit_fallback.config.shared.decode_resolution`.

Ended outages come from the store's ``outage_history`` table, written when an
outage ends (see :meth:`MachineStore.alarms`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import metrics
from ..errors import StoreUnavailable
from .breaker import CircuitBreaker
from .keys import ComponentKey
from .model import AgentConfig
from .shared import decode_resolution
from .sources.snapshot import SnapshotError, SnapshotSource
from .store import BreakerRecord, MachineStore

__all__ = [
    "DEFAULT_HISTORY",
    "ComponentView",
    "ConfigView",
    "IncidentView",
    "MachineStatus",
    "OutageView",
    "export_ages",
    "read_machine_status",
]

DEFAULT_HISTORY = 10
"""Ended outages shown, newest first."""


@dataclass(frozen=True)
class ComponentView:
    """One component of a stored config: where it came from, why, and how old that copy is.

    Attributes:
        key: The component key (``theme``, ``nodes.greet``, ``models.llm``).
        source: ``database``, ``last_known_good`` or ``snapshot``.
        reason: Why the database did not supply it (``None`` when it did).
        detail: The exact error (left out of public views).
        age_seconds: Seconds since the copy was taken (``None`` when unknown).
    """

    key: str
    source: str
    reason: str | None
    detail: str | None
    age_seconds: float | None

    @property
    def degraded(self) -> bool:
        """Served from a fallback copy."""
        return self.source != "database"


@dataclass(frozen=True)
class ConfigView:
    """The latest resolution of one vertical and platform, by whichever process made it.

    Attributes:
        vertical: The vertical.
        platform: ``livekit`` or ``signalwire``.
        resolved_seconds_ago: Seconds since the resolution.
        degraded: Some component came from a fallback copy.
        components: Every component, in config order.
        config: The resolved config (for the node graph).
    """

    vertical: str
    platform: str
    resolved_seconds_ago: float
    degraded: bool
    components: tuple[ComponentView, ...]
    config: AgentConfig = field(repr=False)


@dataclass(frozen=True)
class IncidentView:
    """An open incident: one component served from a fallback since ``started_at``.

    Attributes:
        vertical: The vertical.
        platform: The platform.
        component: The component key.
        reason: The reason class.
        started_at: Wall-clock start.
        seconds: How long it has lasted.
        fallbacks: Fallbacks counted machine-wide since it started.
    """

    vertical: str
    platform: str
    component: str
    reason: str
    started_at: float
    seconds: float
    fallbacks: int


@dataclass(frozen=True)
class OutageView:
    """An outage of one vertical and platform: open (``ended_at`` is ``None``) or ended.

    Attributes:
        vertical: The vertical.
        platform: The platform.
        started_at: Wall-clock start.
        ended_at: Wall-clock end, ``None`` while it lasts.
        seconds: How long it lasted (so far).
        resolutions: Resolutions served from fallbacks during it, machine-wide.
    """

    vertical: str
    platform: str
    started_at: float
    ended_at: float | None
    seconds: float
    resolutions: int


@dataclass(frozen=True)
class MachineStatus:
    """Everything the machine-wide store says, as of ``now``.

    Attributes:
        now: Wall-clock time of the read.
        store: The store's file.
        problem: Why the store could not be read (then everything else is empty).
        breaker: The machine's database circuit breaker.
        probe_at: Wall-clock time the open breaker lets one probe through (``None`` when closed).
        configs: The latest resolution per vertical and platform.
        incidents: Open incidents, oldest first.
        outages: Open outages, oldest first.
        history: Ended outages, newest first.
        snapshot_ages: Vertical to seconds since its snapshot was taken.
        last_known_good_ages: ``"vertical/platform"`` to seconds since the
            oldest component of its last-known-good copy was read.
    """

    now: float
    store: str
    problem: str | None = None
    breaker: BreakerRecord = field(default_factory=BreakerRecord)
    probe_at: float | None = None
    configs: tuple[ConfigView, ...] = ()
    incidents: tuple[IncidentView, ...] = ()
    outages: tuple[OutageView, ...] = ()
    history: tuple[OutageView, ...] = ()
    snapshot_ages: dict[str, float] = field(default_factory=dict)
    last_known_good_ages: dict[str, float] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """Readable, breaker closed, nothing degraded and no open incident."""
        return (
            self.problem is None
            and self.breaker.state == "closed"
            and not any(c.degraded for c in self.configs)
            and not self.incidents
        )

    def to_json(self, *, public: bool = False) -> dict[str, Any]:
        """The machine's view as JSON.

        Args:
            public: For unauthenticated readers: leave out the breaker's last
                error and each component's detail (free text that may name hosts).
        """
        breaker: dict[str, Any] = {
            "state": self.breaker.state,
            "failures": self.breaker.failures,
            "opened_at": _iso(self.breaker.opened_at),
            "probe_at": _iso(self.probe_at),
        }
        if not public:
            breaker["last_error"] = self.breaker.last_error
        return {
            "status": "unavailable" if self.problem else "ok" if self.healthy else "degraded",
            "now": _iso(self.now),
            "problem": self.problem if not public else ("store unavailable" if self.problem else None),
            "breaker": breaker,
            "configs": [
                {
                    "vertical": c.vertical,
                    "platform": c.platform,
                    "resolved_seconds_ago": round(c.resolved_seconds_ago, 1),
                    "degraded": c.degraded,
                    "components": {
                        comp.key: {
                            "source": comp.source,
                            "reason": comp.reason,
                            "age_seconds": None if comp.age_seconds is None else round(comp.age_seconds, 1),
                            **({} if public else {"detail": comp.detail}),
                        }
                        for comp in c.components
                    },
                }
                for c in self.configs
            ],
            "incidents": [
                {
                    "vertical": i.vertical,
                    "platform": i.platform,
                    "component": i.component,
                    "reason": i.reason,
                    "started_at": _iso(i.started_at),
                    "seconds": round(i.seconds, 1),
                    "fallbacks": i.fallbacks,
                }
                for i in self.incidents
            ],
            "outages": [_outage_json(o) for o in self.outages],
            "history": [_outage_json(o) for o in self.history],
            "snapshot_ages": {k: round(v, 1) for k, v in self.snapshot_ages.items()},
            "last_known_good_ages": {k: round(v, 1) for k, v in self.last_known_good_ages.items()},
        }


async def read_machine_status(
    directory: Path | str,
    *,
    snapshot_dirs: Sequence[Path] = (),
    cool_down: float | None = None,
    history: int = DEFAULT_HISTORY,
    clock: Callable[[], float] = time.time,
) -> MachineStatus:
    """Read the machine's view from the store in ``directory`` (read-only).

    Args:
        directory: The cache directory holding ``state.sqlite3``.
        snapshot_dirs: Directories searched before the packaged snapshots (for snapshot ages).
        cool_down: The breaker's cool-down in seconds (the default breaker's when ``None``).
        history: How many ended outages to include.
        clock: Wall clock.

    Returns:
        The view; when the store cannot be read, a view with ``problem`` set.
    """
    store = MachineStore.for_directory(directory)
    now = clock()
    try:
        rows = await store.run(lambda conn: _read(conn, history))
    except StoreUnavailable as exc:
        return MachineStatus(now=now, store=str(store.path), problem=str(exc) or "store unavailable")
    breaker = rows.breaker
    wait = CircuitBreaker().cool_down if cool_down is None else cool_down
    probe_at = breaker.opened_at + wait if breaker.state != "closed" and breaker.opened_at is not None else None
    configs = tuple(_config_view(payload, read_at, degraded, now) for payload, read_at, degraded in rows.configs)
    snapshots = SnapshotSource(list(snapshot_dirs))
    snapshot_ages: dict[str, float] = {}
    shown = tuple(c for c in configs if c is not None)
    for vertical in sorted({c.vertical for c in shown} | {v for v, _ in rows.lkg}):
        try:
            snapshot_ages[vertical] = max(0.0, now - snapshots.snapshot(vertical).taken_at.timestamp())
        except SnapshotError:
            continue
    return MachineStatus(
        now=now,
        store=str(store.path),
        breaker=breaker,
        probe_at=probe_at,
        configs=shown,
        incidents=tuple(
            IncidentView(v, p, c, r, started, now - started, total) for v, p, c, r, started, total in rows.incidents
        ),
        outages=tuple(OutageView(v, p, started, None, now - started, n) for v, p, started, n in rows.outages),
        history=tuple(OutageView(v, p, started, ended, ended - started, n) for v, p, started, ended, n in rows.history),
        snapshot_ages=snapshot_ages,
        last_known_good_ages={
            f"{v}/{p}": max(0.0, now - datetime.fromisoformat(oldest).timestamp())
            for (v, p), oldest in rows.lkg.items()
        },
    )


def export_ages(status: MachineStatus) -> None:
    """Set the snapshot and last-known-good age gauges from a machine view.

    Called whenever the view is read (the status page, ``/metrics`` of
    ``livekit-fallback status --serve``), so a scrape sees current ages.
    """
    for vertical, age in status.snapshot_ages.items():
        metrics.SNAPSHOT_AGE.labels(vertical).set(age)
    for key, age in status.last_known_good_ages.items():
        vertical, _, platform = key.partition("/")
        metrics.LAST_KNOWN_GOOD_AGE.labels(vertical, platform).set(age)


@dataclass(frozen=True)
class _Rows:
    breaker: BreakerRecord
    configs: list[tuple[str, float, bool]]
    incidents: list[tuple[str, str, str, str, float, int]]
    outages: list[tuple[str, str, float, int]]
    history: list[tuple[str, str, float, float, int]]
    lkg: dict[tuple[str, str], str]


def _read(conn: sqlite3.Connection, history: int) -> _Rows:
    """Every table the view needs, in one read transaction (a consistent picture)."""
    conn.execute("BEGIN")
    try:
        row = conn.execute(
            "SELECT state, failures, opened_at, last_error FROM breaker WHERE name = 'database'"
        ).fetchone()
        breaker = BreakerRecord() if row is None else BreakerRecord(row[0], row[1], row[2], row[3])
        configs = [
            (p, r, bool(d))
            for p, r, d in conn.execute(
                "SELECT payload, read_at, degraded FROM configs ORDER BY vertical, platform"
            ).fetchall()
        ]
        incidents = conn.execute(
            "SELECT vertical, platform, component, reason, started_at, total FROM incidents ORDER BY started_at"
        ).fetchall()
        outages = conn.execute(
            "SELECT vertical, platform, started_at, resolutions FROM outages ORDER BY started_at"
        ).fetchall()
        ended = conn.execute(
            "SELECT vertical, platform, started_at, ended_at, resolutions FROM outage_history "
            "ORDER BY ended_at DESC LIMIT ?",
            (history,),
        ).fetchall()
        lkg = {
            (v, p): oldest
            for v, p, oldest in conn.execute(
                "SELECT vertical, platform, MIN(read_at) FROM last_known_good GROUP BY vertical, platform"
            ).fetchall()
        }
    finally:
        conn.execute("COMMIT")
    return _Rows(breaker, configs, incidents, outages, ended, lkg)


def _config_view(payload: str, read_at: float, degraded: bool, now: float) -> ConfigView | None:
    try:
        config = decode_resolution(payload).config
    except (ValueError, KeyError, TypeError):
        return None  # written by another version: not shown rather than misread
    components = []
    for key in (str(k) for k in _ordered_keys(config)):
        prov = config.provenance[key]
        taken = prov.taken_at.timestamp() if prov.taken_at else None
        components.append(
            ComponentView(
                key,
                prov.source.value,
                prov.reason.value if prov.reason else None,
                prov.detail,
                None if taken is None else max(0.0, now - taken),
            )
        )
    return ConfigView(config.vertical, config.platform, max(0.0, now - read_at), degraded, tuple(components), config)


def _ordered_keys(config: AgentConfig) -> list[str]:
    """Theme, the nodes in conversation order, then the models; anything else after."""
    order = [str(ComponentKey.theme())] + [str(ComponentKey.node(n)) for n in config.nodes]
    order += [str(ComponentKey.model(k)) for k in ("stt", "llm", "tts")]
    known = [k for k in order if k in config.provenance]
    return known + [k for k in config.provenance if k not in known]


def _outage_json(outage: OutageView) -> dict[str, Any]:
    return {
        "vertical": outage.vertical,
        "platform": outage.platform,
        "started_at": _iso(outage.started_at),
        "ended_at": _iso(outage.ended_at),
        "seconds": round(outage.seconds, 1),
        "resolutions": outage.resolutions,
    }


def _age(now: float, iso: str) -> float:
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, now - moment.timestamp())


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")
