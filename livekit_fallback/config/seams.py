"""The roles the resolver's sources play, as protocols.

The resolver reads three kinds of source and needs a little more of two of
them than :class:`~livekit_fallback.config.sources.base.ConfigSource`:

- the database may say where it reads each component (:class:`LocatedSource`),
  so banners name the table even when the database was not asked (breaker
  open) or did not answer at all;
- the snapshot is the floor: it also gives the vertical's node names and the
  backup model choices (:class:`SnapshotFloor`).

The database and the snapshot each have two real implementations (Supabase
and the test suite's fakes; the packaged files and a user's own directory).
The last-known-good copy has one, over the deployment's state
(:class:`~livekit_fallback.config.sources.last_known_good.LastKnownGoodSource`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from .keys import Platform
from .model import ModelChoice, Node, Theme
from .sources.base import ConfigSource

__all__ = ["LocatedSource", "SnapshotCopy", "SnapshotFloor"]


@runtime_checkable
class LocatedSource(Protocol):
    """A source that can name where it reads a component without reading it."""

    def location(self, key: str, platform: Platform) -> str:
        """The table(s) or file a component key is read from, for banners and provenance."""
        ...


class SnapshotCopy(Protocol):
    """One vertical's snapshot, as the resolver uses it."""

    @property
    def node_names(self) -> tuple[str, ...]:
        """Node names in conversation order."""
        ...

    @property
    def taken_at(self) -> datetime:
        """When the snapshot was read from the database."""
        ...

    @property
    def path(self) -> str:
        """The file it was read from."""
        ...

    def component(self, key: str, platform: Platform) -> Theme | Node | ModelChoice:
        """Build and validate one component (raises when the file's copy is invalid)."""
        ...


class SnapshotFloor(ConfigSource, Protocol):
    """The snapshot source: the floor every component can fall back to."""

    def snapshot(self, vertical: str) -> SnapshotCopy:
        """Load the vertical's snapshot (raises ``SnapshotError`` when there is none)."""
        ...
