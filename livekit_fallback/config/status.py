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

__all__ = ["ComponentStatus", "Status", "degraded_components"]


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

    def to_json(self, *, public: bool = False, unavailable: bool = False) -> dict[str, Any]:
        """The health record: the one JSON shape every health report uses.

        ``livekit-fallback status`` prints it, ``resolve --json`` carries it
        under ``"health"``, and the SignalWire server's ``/healthz`` is meant
        to serve it with ``public=True``::

            {"status": "ok" | "degraded" | "unavailable",
             "database": {"configured": bool, "reachable": bool | null,
                          "since": iso8601 | null, "breaker": str,
                          "last_error": str | null},
             "degraded": {"<vertical>/<platform>":
                          {"<component>": {"source": ..., "reason": ..., "detail": ...}}}}

        Keys may be added, never removed or renamed (``public`` leaves out the
        two free-text ones).

        Args:
            public: For unauthenticated endpoints: leave out ``last_error`` and
                each component's ``detail`` (free text that may name hosts).
            unavailable: The latest resolution produced no usable config at
                all; ``status`` says ``unavailable`` instead of ok/degraded.
        """
        database: dict[str, Any] = {
            "configured": self.database_configured,
            "reachable": self.database_reachable,
            "since": self.since.isoformat() if self.since else None,
            "breaker": self.breaker,
        }
        if not public:
            database["last_error"] = self.last_error
        return {
            "status": "unavailable" if unavailable else "ok" if self.healthy else "degraded",
            "database": database,
            "degraded": {
                key: {c: _component_json(s, public) for c, s in comps.items()} for key, comps in self.degraded.items()
            },
        }


def _component_json(status: ComponentStatus, public: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"source": status.source, "reason": status.reason}
    if not public:
        entry["detail"] = status.detail
    return entry


def degraded_components(config: AgentConfig) -> dict[str, ComponentStatus]:
    """The degraded components of one resolved config."""
    return {
        key: ComponentStatus(prov.source.value, prov.reason.value if prov.reason else None, prov.detail)
        for key, prov in config.degraded.items()
    }
