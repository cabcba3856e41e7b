"""The resolution state in this process's memory.

Used with ``LIVEKIT_FALLBACK_SHARED_STATE=0``, by tests that want a state of
their own, and in place of the SQLite file while it cannot be used. The rules
are the same as on the file (:mod:`~livekit_fallback.config.state.policy`);
only this process sees the records.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .copies import CopyFiles
from .records import BreakerRecord, IncidentRecord, OutageRecord, StoredConfig
from .storage import DeploymentRows, LastKnownGood, T, Transaction

__all__ = ["MemoryStorage"]

HISTORY_KEPT = 200
"""Ended outages kept per deployment."""


@dataclass
class _Records:
    configs: dict[tuple[str, str], StoredConfig] = field(default_factory=dict)
    leases: dict[str, tuple[str, float]] = field(default_factory=dict)
    breaker: BreakerRecord = field(default_factory=BreakerRecord)
    incidents: dict[tuple[str, str, str], IncidentRecord] = field(default_factory=dict)
    outages: dict[tuple[str, str], OutageRecord] = field(default_factory=dict)
    history: list[tuple[str, str, OutageRecord, float]] = field(default_factory=list)
    last_known_good: dict[tuple[str, str], LastKnownGood] = field(default_factory=dict)


class _MemoryTransaction:
    """A :class:`~livekit_fallback.config.state.storage.Transaction` over one deployment's records."""

    def __init__(self, records: _Records) -> None:
        self._r = records
        self.written: set[tuple[str, str]] = set()

    def config(self, vertical: str, platform: str) -> StoredConfig | None:
        return self._r.configs.get((vertical, platform))

    def put_config(self, vertical: str, platform: str, entry: StoredConfig) -> None:
        self._r.configs[(vertical, platform)] = entry

    def lease(self, name: str) -> tuple[str, float] | None:
        return self._r.leases.get(name)

    def put_lease(self, name: str, holder: str, until: float) -> None:
        self._r.leases[name] = (holder, until)

    def drop_lease(self, name: str, holder: str) -> None:
        if self._r.leases.get(name, ("", 0.0))[0] == holder:
            del self._r.leases[name]

    def breaker(self) -> BreakerRecord:
        return self._r.breaker

    def put_breaker(self, record: BreakerRecord) -> None:
        self._r.breaker = record

    def incident(self, vertical: str, platform: str, component: str) -> IncidentRecord | None:
        return self._r.incidents.get((vertical, platform, component))

    def put_incident(self, vertical: str, platform: str, component: str, record: IncidentRecord) -> None:
        self._r.incidents[(vertical, platform, component)] = record

    def drop_incidents(self, vertical: str, platform: str, components: Iterable[str]) -> None:
        for component in components:
            self._r.incidents.pop((vertical, platform, component), None)

    def has_incidents(self, vertical: str, platform: str) -> bool:
        return any(key[:2] == (vertical, platform) for key in self._r.incidents)

    def outage(self, vertical: str, platform: str) -> OutageRecord | None:
        return self._r.outages.get((vertical, platform))

    def put_outage(self, vertical: str, platform: str, record: OutageRecord) -> None:
        self._r.outages[(vertical, platform)] = record

    def end_outage(self, vertical: str, platform: str, record: OutageRecord, ended_at: float) -> None:
        self._r.outages.pop((vertical, platform), None)
        self._r.history.insert(0, (vertical, platform, record, ended_at))
        del self._r.history[HISTORY_KEPT:]

    def last_known_good(self, vertical: str, platform: str) -> LastKnownGood:
        return dict(self._r.last_known_good.get((vertical, platform), {}))

    def put_last_known_good(self, vertical: str, platform: str, components: Mapping[str, tuple[str, str]]) -> None:
        self._r.last_known_good.setdefault((vertical, platform), {}).update(components)
        self.written.add((vertical, platform))


class MemoryStorage:
    """A :class:`~livekit_fallback.config.state.storage.StateStorage` in this process's memory.

    Operations run at once, under a lock (they touch only dictionaries), so
    calls on several event loops of one process share the records safely.

    Args:
        copies: Where the last-known-good copies are kept on disk, so they
            survive a restart (``None``: in memory only).
    """

    kind = "memory"
    usable = True
    problem = None

    def __init__(self, copies: CopyFiles | None = None) -> None:
        self._records: dict[str, _Records] = {}
        self._lock = threading.Lock()
        self._copies = copies
        self._loaded: set[str] = set()

    @property
    def location(self) -> str:
        """``memory``, and where the copies are written, if anywhere."""
        return "memory" if self._copies is None else f"memory (copies in {self._copies.directory})"

    async def run(self, deployment: str, operation: Callable[[Transaction], T]) -> T:
        """Run ``operation`` over one deployment's records, atomically; write the copies it changed."""
        if self._copies is not None and deployment not in self._loaded:
            self._loaded.add(deployment)
            copies = await self._copies.load(deployment)
            with self._lock:
                records = self._records.setdefault(deployment, _Records())
                for key, copy in copies.items():
                    records.last_known_good.setdefault(key, {}).update(copy)
        with self._lock:
            records = self._records.setdefault(deployment, _Records())
            tx = _MemoryTransaction(records)
            result = operation(tx)
            changed = {key: dict(records.last_known_good[key]) for key in tx.written}
        if self._copies is not None:
            for (vertical, platform), components in changed.items():
                await self._copies.save(deployment, vertical, platform, components)
        return result

    async def read(self, deployment: str, operation: Callable[[Transaction], T]) -> T:
        """:meth:`run` (memory is never read-only)."""
        return await self.run(deployment, operation)

    def run_now(self, deployment: str, operation: Callable[[Transaction], T]) -> T:
        """:meth:`run` without the files, for callers without an event loop."""
        with self._lock:
            records = self._records.setdefault(deployment, _Records())
            return operation(_MemoryTransaction(records))

    def clear(self) -> None:
        """Forget every record (a process that wants to start over, or a test)."""
        with self._lock:
            self._records.clear()
            self._loaded.clear()

    async def rows(self, history: int) -> list[DeploymentRows]:
        """Every deployment's records, for status views."""
        with self._lock:
            return [_rows(deployment, records, history) for deployment, records in sorted(self._records.items())]


def _rows(deployment: str, r: _Records, history: int) -> DeploymentRows:
    return DeploymentRows(
        deployment=deployment,
        breaker=r.breaker,
        configs=tuple((v, p, e) for (v, p), e in sorted(r.configs.items())),
        incidents=tuple(
            (v, p, c, i) for (v, p, c), i in sorted(r.incidents.items(), key=lambda item: item[1].started_at)
        ),
        outages=tuple((v, p, o) for (v, p), o in sorted(r.outages.items(), key=lambda item: item[1].started_at)),
        history=tuple(r.history[:history]),
        last_known_good={
            key: min(read_at for _, read_at in copy.values()) for key, copy in r.last_known_good.items() if copy
        },
    )
