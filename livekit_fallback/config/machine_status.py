"""The whole machine's view, read from the state: what every process sees right now, per deployment.

A LiveKit host runs every call in its own process and serves no HTTP of its
own, so "what state are my calls in" cannot be asked of one process. The
state (:mod:`~livekit_fallback.config.state`) holds, per deployment (the
database a config is read from), what every process resolved, the breaker,
the open incidents and outages and the last-known-good copy;
:func:`read_machine_status` reads all of it at once, for the status page and
``livekit-fallback status --machine``. Nothing here writes to the state or
touches the database. Each deployment's part of the JSON is the one health
shape (:meth:`~livekit_fallback.config.status.Status.to_json`), with the
machine's details added.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import metrics
from ..errors import StoreUnavailable
from .keys import ComponentKey
from .model import AgentConfig
from .settings import DEFAULT_COOL_DOWN
from .sources.snapshot import SnapshotError, SnapshotSource
from .state.codec import decode_resolution
from .state.records import SNAPSHOT_DEPLOYMENT, BreakerRecord, StoredConfig
from .state.sqlite import SqliteStorage
from .state.storage import DeploymentRows, StateStorage
from .status import ComponentStatus, Status

__all__ = [
    "DEFAULT_HISTORY",
    "ComponentView",
    "ConfigView",
    "DeploymentStatus",
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
class DeploymentStatus:
    """What the state holds for one deployment (one database, or snapshot mode), as of ``now``.

    Attributes:
        deployment: The database's URL, or ``snapshot``.
        now: Wall-clock time of the read.
        breaker: The deployment's database circuit breaker.
        probe_at: Wall-clock time the open breaker lets one probe through (``None`` when closed).
        configs: The latest resolution per vertical and platform.
        incidents: Open incidents, oldest first.
        outages: Open outages, oldest first.
        history: Ended outages, newest first.
        last_known_good_ages: ``"vertical/platform"`` to seconds since the
            oldest component of its last-known-good copy was read.
    """

    deployment: str
    now: float
    breaker: BreakerRecord = field(default_factory=BreakerRecord)
    probe_at: float | None = None
    configs: tuple[ConfigView, ...] = ()
    incidents: tuple[IncidentView, ...] = ()
    outages: tuple[OutageView, ...] = ()
    history: tuple[OutageView, ...] = ()
    last_known_good_ages: dict[str, float] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """Breaker closed, nothing degraded and no open incident."""
        return self.breaker.state == "closed" and not any(c.degraded for c in self.configs) and not self.incidents

    def label(self, *, public: bool) -> str:
        """How views name the deployment: its URL, or for unauthenticated readers a digest of it (no host)."""
        if self.deployment == SNAPSHOT_DEPLOYMENT:
            return "snapshot mode (no database)"
        if public:
            return f"database {hashlib.sha256(self.deployment.encode()).hexdigest()[:10]}"
        return self.deployment

    def health(self) -> Status:
        """The deployment as the one health record every report uses."""
        configured = self.deployment != SNAPSHOT_DEPLOYMENT
        reachable: bool | None = None
        if configured and (self.configs or self.breaker.failures):
            reachable = self.breaker.state == "closed" and self.breaker.failures == 0
        return Status(
            database_configured=configured,
            database_reachable=reachable,
            since=None,
            breaker=self.breaker.state,
            last_error=self.breaker.last_error,
            degraded={
                f"{c.vertical}/{c.platform}": {
                    comp.key: ComponentStatus(comp.source, comp.reason, comp.detail)
                    for comp in c.components
                    if comp.degraded
                }
                for c in self.configs
            },
        )

    def to_json(self, *, public: bool = False) -> dict[str, Any]:
        """The health shape (:meth:`Status.to_json`) with the machine's details added.

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
        document = self.health().to_json(public=public)
        if not self.healthy and document["status"] == "ok":
            document["status"] = "degraded"
        return {
            "deployment": self.label(public=public) if public else self.deployment,
            **document,
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
            "last_known_good_ages": {k: round(v, 1) for k, v in self.last_known_good_ages.items()},
        }


@dataclass(frozen=True)
class MachineStatus:
    """Everything the state says, per deployment, as of ``now``.

    Attributes:
        now: Wall-clock time of the read.
        store: Where the state is kept (the file, or ``memory``).
        problem: Why the state could not be read (then everything else is empty).
        deployments: Each deployment's view, apart.
        snapshot_ages: Vertical to seconds since its snapshot was taken.
    """

    now: float
    store: str
    problem: str | None = None
    deployments: tuple[DeploymentStatus, ...] = ()
    snapshot_ages: dict[str, float] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """Readable, and every deployment healthy."""
        return self.problem is None and all(d.healthy for d in self.deployments)

    def to_json(self, *, public: bool = False) -> dict[str, Any]:
        """The machine's view as JSON: one health record per deployment.

        Args:
            public: For unauthenticated readers: no error details.
        """
        return {
            "status": "unavailable" if self.problem else "ok" if self.healthy else "degraded",
            "now": _iso(self.now),
            "problem": self.problem if not public else ("store unavailable" if self.problem else None),
            "deployments": [d.to_json(public=public) for d in self.deployments],
            "snapshot_ages": {k: round(v, 1) for k, v in self.snapshot_ages.items()},
        }


async def read_machine_status(
    where: Path | str | StateStorage,
    *,
    snapshot_dirs: Sequence[Path] = (),
    cool_down: float | None = None,
    history: int = DEFAULT_HISTORY,
    clock: Callable[[], float] = time.time,
) -> MachineStatus:
    """Read the machine's view from the state (read-only).

    Args:
        where: The cache directory holding ``state.sqlite3``, or a storage.
        snapshot_dirs: Directories searched before the packaged snapshots (for snapshot ages).
        cool_down: The breaker's cool-down in seconds (the default when ``None``).
        history: How many ended outages to include per deployment.
        clock: Wall clock.

    Returns:
        The view; when the state cannot be read, a view with ``problem`` set.
    """
    storage = SqliteStorage.for_directory(where) if isinstance(where, (str, Path)) else where
    now = clock()
    try:
        rows = await storage.rows(history)
    except StoreUnavailable as exc:
        return MachineStatus(now=now, store=storage.location, problem=str(exc) or "store unavailable")
    wait = DEFAULT_COOL_DOWN if cool_down is None else cool_down
    deployments = tuple(_deployment(r, now, wait) for r in rows)
    snapshots = SnapshotSource(list(snapshot_dirs))
    snapshot_ages: dict[str, float] = {}
    verticals = {c.vertical for d in deployments for c in d.configs}
    verticals |= {k.partition("/")[0] for d in deployments for k in d.last_known_good_ages}
    for vertical in sorted(verticals):
        try:
            snapshot_ages[vertical] = max(0.0, now - snapshots.snapshot(vertical).taken_at.timestamp())
        except SnapshotError:
            continue
    return MachineStatus(now=now, store=storage.location, deployments=deployments, snapshot_ages=snapshot_ages)


def _deployment(rows: DeploymentRows, now: float, cool_down: float) -> DeploymentStatus:
    breaker = rows.breaker
    probe_at = breaker.opened_at + cool_down if breaker.state != "closed" and breaker.opened_at is not None else None
    configs = (_config_view(entry, now) for _, _, entry in rows.configs)
    return DeploymentStatus(
        deployment=rows.deployment,
        now=now,
        breaker=breaker,
        probe_at=probe_at,
        configs=tuple(c for c in configs if c is not None),
        incidents=tuple(
            IncidentView(v, p, c, i.reason, i.started_at, now - i.started_at, i.total) for v, p, c, i in rows.incidents
        ),
        outages=tuple(
            OutageView(v, p, o.started_at, None, now - o.started_at, o.resolutions) for v, p, o in rows.outages
        ),
        history=tuple(
            OutageView(v, p, o.started_at, ended, ended - o.started_at, o.resolutions)
            for v, p, o, ended in rows.history
        ),
        last_known_good_ages={f"{v}/{p}": _age(now, oldest) for (v, p), oldest in rows.last_known_good.items()},
    )


def export_ages(status: MachineStatus) -> None:
    """Set the snapshot and last-known-good age gauges from a machine view.

    Called whenever the view is read (the status page, ``/metrics`` of
    ``livekit-fallback status --serve``), so a scrape sees current ages.
    """
    for vertical, age in status.snapshot_ages.items():
        metrics.SNAPSHOT_AGE.labels(vertical).set(age)
    for deployment in status.deployments:
        for key, age in deployment.last_known_good_ages.items():
            vertical, _, platform = key.partition("/")
            metrics.LAST_KNOWN_GOOD_AGE.labels(vertical, platform).set(age)


def _config_view(entry: StoredConfig, now: float) -> ConfigView | None:
    try:
        config = decode_resolution(entry.payload).config
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
    return ConfigView(
        config.vertical, config.platform, max(0.0, now - entry.read_at), entry.degraded, tuple(components), config
    )


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
