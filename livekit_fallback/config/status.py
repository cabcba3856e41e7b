"""A truthful health record: is the database reachable, since when, what runs degraded.

"Ready" must never claim more than is true: the status says whether the last
database read succeeded (``None`` before any read), when that last changed,
the breaker state, and per vertical/platform which components the latest
resolution served from a fallback and from which source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .model import AgentConfig

__all__ = ["ComponentStatus", "Status"]


@dataclass(frozen=True)
class ComponentStatus:
    """A degraded component: where it is served from and why."""

    source: str
    reason: str | None
    detail: str | None


@dataclass(frozen=True)
class Status:
    """Health of a resolver.

    Attributes:
        database_configured: False in snapshot mode.
        database_reachable: Result of the latest database read (None: none yet).
        since: When ``database_reachable`` last changed.
        breaker: ``closed``, ``open`` or ``half_open``.
        last_error: The latest database error, secrets removed.
        degraded: ``"vertical/platform"`` to component key to its status, from
            the latest resolution of each.
    """

    database_configured: bool
    database_reachable: bool | None
    since: datetime | None
    breaker: str
    last_error: str | None
    degraded: dict[str, dict[str, ComponentStatus]] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """True when the database is reachable and nothing is degraded."""
        return bool(self.database_reachable) and not any(self.degraded.values())

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the health endpoint's body)."""
        return {
            "status": "ok" if self.healthy else "degraded",
            "database": {
                "configured": self.database_configured,
                "reachable": self.database_reachable,
                "since": self.since.isoformat() if self.since else None,
                "breaker": self.breaker,
                "last_error": self.last_error,
            },
            "degraded": {
                key: {c: {"source": s.source, "reason": s.reason, "detail": s.detail} for c, s in comps.items()}
                for key, comps in self.degraded.items()
            },
        }


def degraded_components(config: AgentConfig) -> dict[str, ComponentStatus]:
    """The degraded components of one resolved config."""
    return {
        key: ComponentStatus(prov.source.value, prov.reason.value if prov.reason else None, prov.detail)
        for key, prov in config.degraded.items()
    }
