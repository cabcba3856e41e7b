"""The one seam of the resolution state: where records are kept.

The rules (:mod:`~livekit_fallback.config.state.policy`) are written once,
as plain decisions over a :class:`Transaction`: read a record, decide, write
it back. A :class:`StateStorage` runs such a decision atomically for one
deployment. There are two: the SQLite file every process of a machine shares
(:class:`~livekit_fallback.config.state.sqlite.SqliteStorage`, the default)
and this process's memory
(:class:`~livekit_fallback.config.state.memory.MemoryStorage`, for
``LIVEKIT_FALLBACK_SHARED_STATE=0`` and while the file cannot be used).
Choosing one is the only difference between them: the code path is the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from .records import BreakerRecord, IncidentRecord, OutageRecord, StoredConfig

__all__ = ["DeploymentRows", "StateStorage", "Transaction"]

T = TypeVar("T")

LastKnownGood = dict[str, tuple[str, str]]
"""Component key to ``(value JSON, read_at ISO time)``."""


class Transaction(Protocol):
    """One deployment's records inside one atomic operation."""

    def config(self, vertical: str, platform: str) -> StoredConfig | None:
        """The stored config of a vertical and platform."""
        ...

    def put_config(self, vertical: str, platform: str, entry: StoredConfig) -> None:
        """Replace the stored config."""
        ...

    def lease(self, name: str) -> tuple[str, float] | None:
        """``(holder, until)`` of a lease, if one was taken."""
        ...

    def put_lease(self, name: str, holder: str, until: float) -> None:
        """Take or extend a lease."""
        ...

    def drop_lease(self, name: str, holder: str) -> None:
        """Give up a lease if ``holder`` holds it."""
        ...

    def breaker(self) -> BreakerRecord:
        """The deployment's breaker (closed when none was written)."""
        ...

    def put_breaker(self, record: BreakerRecord) -> None:
        """Replace the breaker."""
        ...

    def incident(self, vertical: str, platform: str, component: str) -> IncidentRecord | None:
        """The open incident of a component."""
        ...

    def put_incident(self, vertical: str, platform: str, component: str, record: IncidentRecord) -> None:
        """Open or update an incident."""
        ...

    def drop_incidents(self, vertical: str, platform: str, components: Iterable[str]) -> None:
        """Close the incidents of these components."""
        ...

    def has_incidents(self, vertical: str, platform: str) -> bool:
        """Whether any component of a vertical and platform has an open incident."""
        ...

    def outage(self, vertical: str, platform: str) -> OutageRecord | None:
        """The open outage of a vertical and platform."""
        ...

    def put_outage(self, vertical: str, platform: str, record: OutageRecord) -> None:
        """Open or update an outage."""
        ...

    def end_outage(self, vertical: str, platform: str, record: OutageRecord, ended_at: float) -> None:
        """Close an outage and keep it in the history."""
        ...

    def last_known_good(self, vertical: str, platform: str) -> LastKnownGood:
        """The last-known-good copy of a vertical and platform."""
        ...

    def put_last_known_good(self, vertical: str, platform: str, components: Mapping[str, tuple[str, str]]) -> None:
        """Replace these components of the last-known-good copy."""
        ...


@dataclass(frozen=True)
class DeploymentRows:
    """Everything stored for one deployment, read at once (for status views).

    Attributes:
        deployment: The deployment's identity.
        breaker: Its breaker.
        configs: ``(vertical, platform, entry)`` per stored config.
        incidents: ``(vertical, platform, component, record)`` per open incident.
        outages: ``(vertical, platform, record)`` per open outage.
        history: ``(vertical, platform, record, ended_at)`` per ended outage, newest first.
        last_known_good: ``(vertical, platform)`` to the oldest read time (ISO) of its copy.
    """

    deployment: str
    breaker: BreakerRecord = field(default_factory=BreakerRecord)
    configs: tuple[tuple[str, str, StoredConfig], ...] = ()
    incidents: tuple[tuple[str, str, str, IncidentRecord], ...] = ()
    outages: tuple[tuple[str, str, OutageRecord], ...] = ()
    history: tuple[tuple[str, str, OutageRecord, float], ...] = ()
    last_known_good: dict[tuple[str, str], str] = field(default_factory=dict)


class StateStorage(Protocol):
    """Where the resolution state is kept; runs one decision atomically per call."""

    @property
    def kind(self) -> str:
        """``sqlite`` or ``memory``."""
        ...

    @property
    def location(self) -> str:
        """Where the records are (a file path, or ``memory``), for logs and status."""
        ...

    @property
    def usable(self) -> bool:
        """False while the storage is being left alone after a failure."""
        ...

    @property
    def problem(self) -> str | None:
        """Why the storage is not in use, or ``None``."""
        ...

    async def run(self, deployment: str, operation: Callable[[Transaction], T]) -> T:
        """Run ``operation`` atomically over one deployment's records.

        Raises:
            StoreUnavailable: The storage cannot be used now.
        """
        ...

    async def read(self, deployment: str, operation: Callable[[Transaction], T]) -> T:
        """Run a read-only ``operation``; works while the records cannot be written.

        Raises:
            StoreUnavailable: The records cannot be read either.
        """
        ...

    async def rows(self, history: int) -> list[DeploymentRows]:
        """Every deployment's records, for status views (read-only).

        Raises:
            StoreUnavailable: The storage cannot be read now.
        """
        ...
