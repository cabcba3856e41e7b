"""The roles the resolver's sources play, as protocols.

The resolver reads three kinds of source and needs a little more of two of
them than :class:`~livekit_fallback.config.sources.base.ConfigSource`:

- the database may say where it reads each component (:class:`LocatedSource`),
  so banners name the table even when the database was not asked (breaker
  open) or did not answer at all;
- the last-known-good copy is also written after each successful database
  read (:class:`LastKnownGoodStore`);
- the snapshot is the floor: it also gives the vertical's node names and the
  backup model choices (:class:`SnapshotFloor`).

The concrete sources in :mod:`livekit_fallback.config.sources` fit these
shapes; a test or another store (for example one shared by every process of a
machine) can stand in without the resolver knowing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from .keys import Platform
from .model import AgentConfig, ModelChoice, Node, Theme
from .sources.base import ConfigSource

__all__ = ["LastKnownGoodStore", "LocatedSource", "SnapshotCopy", "SnapshotFloor"]


@runtime_checkable
class LocatedSource(Protocol):
    """A source that can name where it reads a component without reading it."""

    def location(self, key: str, platform: Platform) -> str:
        """The table(s) or file a component key is read from, for banners and provenance."""
        ...


class LastKnownGoodStore(ConfigSource, Protocol):
    """The last-known-good copy: a source that is also written after good database reads."""

    @property
    def directory(self) -> Path:
        """Where the copies live (named in the alarm when a write fails)."""
        ...

    on_problem: Callable[[str, str], None] | None
    """Called with ``(path, detail)`` when a copy is skipped; the resolver sets it to its alarms."""

    async def store(self, config: AgentConfig) -> bool:
        """Keep the config's database-sourced components; True if a file was written."""
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

    def node_names(self, vertical: str) -> tuple[str, ...]:
        """The vertical's node names, or the standard nodes without a snapshot."""
        ...
