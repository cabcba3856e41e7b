"""What the resolution state stores, and whose it is.

Every record belongs to one deployment: the database it was read from (its
project URL, never its key) or snapshot mode. Two agents on one machine that
read different databases share a cache directory but never a record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "SNAPSHOT_DEPLOYMENT",
    "AlarmDecision",
    "BreakerRecord",
    "IncidentRecord",
    "OutageRecord",
    "Plan",
    "Recovery",
    "StoredConfig",
    "deployment_of",
]

SNAPSHOT_DEPLOYMENT = "snapshot"
"""The deployment of a resolver with no database (snapshot mode)."""

CacheState = Literal["hit", "stale", "wait", "miss"]


def deployment_of(url: str | None) -> str:
    """The identity a database's state is kept under: its project URL, normalised.

    The key is never part of it, so rotating the key keeps the last-known-good
    copy; user info, query and fragment are dropped and the host is lowercased,
    so two spellings of one project are one deployment.

    Args:
        url: ``SUPABASE_URL``, or ``None`` for snapshot mode.
    """
    if not url:
        return SNAPSHOT_DEPLOYMENT
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    netloc = host if port is None or port == default else f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))


@dataclass(frozen=True)
class StoredConfig:
    """A resolved config as some process of the machine left it.

    Attributes:
        payload: The resolution's JSON (:func:`~livekit_fallback.config.state.codec.encode_resolution`).
        read_at: Wall-clock time (``time.time()``) of the resolution.
        degraded: Some component came from a fallback copy.
    """

    payload: str
    read_at: float
    degraded: bool


@dataclass(frozen=True)
class BreakerRecord:
    """A deployment's database circuit breaker.

    Attributes:
        state: ``closed``, ``open`` or ``half_open``.
        failures: Consecutive failed database reads.
        opened_at: Wall-clock time the breaker last opened.
        last_error: The latest database error, secrets removed.
    """

    state: Literal["closed", "open", "half_open"] = "closed"
    failures: int = 0
    opened_at: float | None = None
    last_error: str | None = None

    def cooling_down(self, now: float, cool_down: float) -> bool:
        """Open and inside the cool-down: nobody may read the database yet.

        An ``opened_at`` in the future (written by a process whose clock was
        ahead) is not trusted: the breaker is due for its probe.
        """
        return self.state == "open" and self.opened_at is not None and 0 <= now - self.opened_at < cool_down


@dataclass(frozen=True)
class IncidentRecord:
    """One component served from fallbacks since ``started_at``.

    Attributes:
        reason: The reason class of the first fallback.
        started_at: Wall-clock start.
        last_line: Wall-clock time of the latest logged line.
        since_line: Fallbacks since that line.
        total: Fallbacks since the start.
    """

    reason: str
    started_at: float
    last_line: float
    since_line: int = 0
    total: int = 1


@dataclass(frozen=True)
class OutageRecord:
    """A vertical and platform with some component served from fallbacks.

    Attributes:
        started_at: Wall-clock start.
        resolutions: Resolutions served from fallbacks since then.
    """

    started_at: float
    resolutions: int = 1


@dataclass(frozen=True)
class Plan:
    """What one resolution should do, decided atomically for its deployment.

    Attributes:
        entry: The stored config, if any.
        cache: ``hit`` (serve ``entry``), ``stale`` (serve ``entry``; a fresh
            read may run if ``database``), ``wait`` (another call is reading
            the database and nothing is stored: wait for its result) or
            ``miss`` (nothing to serve: read now).
        refresh: This call holds the refresh lease.
        database: This call may read the database (breaker closed, or it holds the probe).
        probe: This call holds the breaker's probe lease.
        breaker: The breaker as it was read.
        holder: This call's lease holder.
        overdue: The copy has outlived every refresh started for it (or is
            stamped in the future): the call that reads waits for its read.
    """

    entry: StoredConfig | None
    cache: CacheState
    refresh: bool
    database: bool
    probe: bool
    breaker: BreakerRecord
    holder: str = ""
    overdue: bool = False

    @property
    def reads(self) -> bool:
        """This call is the one to read the database now."""
        return self.database and (self.refresh or self.probe)


@dataclass(frozen=True)
class AlarmDecision:
    """What to log for one fallback event.

    Attributes:
        action: ``banner`` (the first of an incident), ``repeat`` (a counted
            line is due) or ``quiet`` (counted, nothing to log now).
        since_line: Fallbacks since the previous line (for ``repeat``).
        total: Fallbacks since the incident started.
        started_at: Wall-clock start of the incident.
        interval: Seconds since the previous line.
    """

    action: Literal["banner", "repeat", "quiet"]
    since_line: int = 0
    total: int = 1
    started_at: float = 0.0
    interval: float = 0.0


@dataclass(frozen=True)
class Recovery:
    """An outage ended (logged once per deployment per machine).

    Attributes:
        started_at: Wall-clock start of the outage.
        seconds: How long it lasted.
        resolutions: Resolutions served from fallbacks during it.
    """

    started_at: float
    seconds: float
    resolutions: int
