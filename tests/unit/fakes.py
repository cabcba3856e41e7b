"""Fake sources and a fake clock for the unit tier: the pipeline, cache, breaker and alarms in milliseconds.

The fakes implement the package's protocols (``ConfigSource``,
``LocatedSource``); component values are the packaged snapshot's, built and
validated by the package's own code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timezone

from livekit_fallback.config.keys import Platform, component_keys
from livekit_fallback.config.model import ModelChoice, Node, Reason, Source, Theme
from livekit_fallback.config.sources.base import Failure, FetchRequest, Found, Outcome
from livekit_fallback.config.sources.snapshot import SnapshotSource

__all__ = ["DB_LLM", "VERTICAL", "FakeClock", "FakeDatabase", "FakeLocal", "LocatedDatabase", "snapshot_values"]

VERTICAL = "reverse_mortgage"
DB_LLM = "openai/gpt-4.1"
"""The LLM the fake database serves (the packaged snapshot's is ``openai/gpt-5``)."""


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


def snapshot_values(platform: Platform = "livekit") -> dict[str, Theme | Node | ModelChoice]:
    """Every component of the packaged snapshot, by key text."""
    snap = SnapshotSource().snapshot(VERTICAL)
    return {str(k): snap.component(str(k), platform) for k in component_keys(snap.node_names)}


class FakeDatabase:
    """A database source whose answers a test sets.

    Attributes:
        mode: ``answer``, ``refuse`` (connection-level failures), ``hang``
            (never returns) or ``raise`` (the fetch itself raises).
        broken: Component keys answered with an ``invalid_content`` failure.
        reads: Every request received.
    """

    source = Source.DATABASE

    def __init__(self, platform: Platform = "livekit") -> None:
        values = snapshot_values(platform)
        if platform == "livekit":
            values["models.llm"] = ModelChoice(kind="llm", platform="livekit", value=DB_LLM)
        self.values = values
        self.mode = "answer"
        self.broken: set[str] = set()
        self.reads: list[FetchRequest] = []
        self.release = asyncio.Event()

    @staticmethod
    def table(key: str) -> str:
        """The fake table a key is read from."""
        return f"fake_{key.partition('.')[0]}_table"

    async def fetch(self, request: FetchRequest) -> dict[str, Outcome]:
        """Answer as ``mode`` says."""
        self.reads.append(request)
        if self.mode == "hang":
            await self.release.wait()
        if self.mode == "raise":
            raise RuntimeError("fake database crashed")
        if self.mode == "refuse":
            return {k: Failure(Reason.UNREACHABLE, "connection refused", self.table(k)) for k in request.keys}
        now = datetime.now(timezone.utc)
        outcomes: dict[str, Outcome] = {}
        for key in request.keys:
            if key in self.broken:
                outcomes[key] = Failure(Reason.INVALID_CONTENT, f"{key} is broken", self.table(key))
            else:
                outcomes[key] = Found(self.values[key], now, self.table(key))
        return outcomes


class LocatedDatabase(FakeDatabase):
    """A fake database that also names its locations without being read."""

    def location(self, key: str, platform: Platform) -> str:
        """The fake table, per platform."""
        return f"{platform}_{self.table(key)}"


class FakeLocal:
    """A local source (last-known-good or snapshot role) serving a fixed set of components.

    Args:
        source: Which source it stands for.
        values: The components it has, by key text; others are missing rows.
    """

    def __init__(self, source: Source, values: Mapping[str, Theme | Node | ModelChoice]) -> None:
        self.source = source
        self.values = dict(values)
        self.taken_at = datetime(2025, 11, 21, tzinfo=timezone.utc)
        self.reads: list[FetchRequest] = []

    async def fetch(self, request: FetchRequest) -> dict[str, Outcome]:
        """Serve what it has."""
        self.reads.append(request)
        where = f"fake {self.source.value}"
        return {
            key: Found(self.values[key], self.taken_at, where)
            if key in self.values
            else Failure(Reason.MISSING_ROW, f"no {key}", where)
            for key in request.keys
        }
